"""The seed article's program on polymatch: change one import, the rest stays."""

# before: import poly_match
from polymatch import compat as poly_match

polygons, points = poly_match.generate_example()
best = poly_match.main(polygons, points)  # [(point, polygon), ...], your own objects back


class Polygon(poly_match.Polygon):  # subclass it, as the article's final code does
    def perimeter(self): ...


print(len(best), "matches; first:", best[0])
