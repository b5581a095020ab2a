//! Which columns hold the geometry, and what the metadata says about them: one resolver
//! for every entry point (in-memory Arrow, Parquet files, the CLI, Dask), so the same
//! table gives the same answer wherever it comes from.
//!
//! # The rule (docs/SPEC.md, "Which columns are read")
//! For points and for polygons alike, the geometry is, in this order:
//! 1. the column(s) the caller names (`geometry=`, or `x=`/`y=` for points);
//! 2. a *declared* geometry: the GeoParquet primary column (the `geo` key of the schema
//!    metadata, which Parquet files and `pyarrow.parquet.read_table` carry), else the
//!    column with a GeoArrow extension type (`ARROW:extension:name = geoarrow.*`); two
//!    or more such columns and no GeoParquet metadata is ambiguous and refused;
//! 3. columns `x` and `y` (numbers for points; lists of numbers, one ring per row, for
//!    polygons: the article's layout);
//! 4. a column named `geometry`, `geom`, `wkb` or `wkb_geometry`.
//!
//! GeoParquet `geo` metadata and GeoArrow `ARROW:extension:metadata` are read into typed
//! structs ([`GeoParquetMetadata`], [`GeoArrowMetadata`]). Both can state a CRS
//! ([`Crs`]) and `edges` ([`Edges`]): planar, or spherical (great-circle arcs, for
//! polygons matched with `metric="sphere"`); ellipsoidal edges are refused.

use std::collections::BTreeMap;

use arrow::datatypes::{DataType, Field, Schema};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{PolymatchError, Result};
use crate::io::crs::Crs;
use crate::sphere::Edges;

/// Column names tried, in order, when no geometry column is named or declared.
pub const GEOMETRY_NAMES: [&str; 4] = ["geometry", "geom", "wkb", "wkb_geometry"];
/// The field metadata key of a GeoArrow extension type's name.
pub const EXTENSION_NAME: &str = "ARROW:extension:name";
/// The field metadata key of a GeoArrow extension type's JSON metadata.
pub const EXTENSION_METADATA: &str = "ARROW:extension:metadata";

/// A GeoParquet column's `crs` entry: missing (the spec's default, OGC:CRS84), `null`
/// (explicitly unknown), or a value.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum CrsEntry {
    /// No `crs` key: OGC:CRS84 by the GeoParquet spec.
    #[default]
    Missing,
    /// `"crs": null`: unknown.
    Null,
    /// A PROJJSON object or a string.
    Value(Value),
}

impl<'de> Deserialize<'de> for CrsEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(if v.is_null() {
            Self::Null
        } else {
            Self::Value(v)
        })
    }
}

/// GeoParquet's description of one geometry column (the `geo` metadata, 1.0/1.1).
#[derive(Debug, Clone, Deserialize)]
pub struct GeoParquetColumn {
    /// `WKB`, `point`, `polygon`, `multipolygon`, ...
    pub encoding: String,
    /// The geometry types the column holds (may be empty: unknown).
    #[serde(default)]
    pub geometry_types: Vec<String>,
    /// The CRS: missing means OGC:CRS84 (the spec's default), `null` means unknown.
    #[serde(default)]
    pub crs: CrsEntry,
    /// `planar` (default) or `spherical`.
    #[serde(default)]
    pub edges: Option<String>,
    /// `[xmin, ymin, xmax, ymax]` (or with z), if stated.
    #[serde(default)]
    pub bbox: Option<Vec<Value>>,
    /// Everything else the writer put there (`covering`, `orientation`, `epoch`, ...).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl GeoParquetColumn {
    /// The column's CRS (`None`: explicitly unknown).
    pub fn crs(&self) -> Option<Crs> {
        match &self.crs {
            CrsEntry::Missing => Some(Crs::crs84()),
            CrsEntry::Null => None,
            CrsEntry::Value(v) => Some(Crs(v.clone())),
        }
    }

    /// The bounding box as four numbers, if stated as such.
    pub fn bbox4(&self) -> Option<[f64; 4]> {
        let v: Vec<f64> = self
            .bbox
            .as_ref()?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        match v.len() {
            4 => Some([v[0], v[1], v[2], v[3]]),
            6 => Some([v[0], v[1], v[3], v[4]]),
            _ => None,
        }
    }
}

/// The GeoParquet `geo` metadata of a file or schema.
#[derive(Debug, Clone, Deserialize)]
pub struct GeoParquetMetadata {
    /// The GeoParquet version.
    #[serde(default)]
    pub version: Option<String>,
    /// The primary geometry column.
    pub primary_column: String,
    /// Every geometry column, by name.
    pub columns: BTreeMap<String, GeoParquetColumn>,
}

impl GeoParquetMetadata {
    /// Parse a `geo` value.
    ///
    /// # Errors
    /// [`PolymatchError::Metadata`] saying what is malformed.
    pub fn parse(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            PolymatchError::Metadata(format!("GeoParquet 'geo' metadata is not valid JSON: {e}"))
        })?;
        let bad =
            |why: String| PolymatchError::Metadata(format!("GeoParquet 'geo' metadata: {why}"));
        let obj = value.as_object().ok_or_else(|| {
            bad("not a JSON object with \"columns\" and \"primary_column\"".into())
        })?;
        let columns = obj
            .get("columns")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("no \"columns\" object".into()))?;
        let primary = obj
            .get("primary_column")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no \"primary_column\"".into()))?;
        if !columns.contains_key(primary) {
            return Err(bad(format!(
                "the primary column {primary:?} is not described in \"columns\""
            )));
        }
        for (name, col) in columns {
            if !col.is_object() {
                return Err(bad(format!("column {name:?} is not a JSON object")));
            }
            if !col.get("encoding").is_some_and(Value::is_string) {
                return Err(bad(format!("column {name:?} has no \"encoding\"")));
            }
        }
        serde_json::from_value(value).map_err(|e| bad(e.to_string()))
    }

    /// The `geo` metadata of `schema`, if it has one.
    ///
    /// # Errors
    /// As [`GeoParquetMetadata::parse`].
    pub fn from_schema(schema: &Schema) -> Result<Option<Self>> {
        schema
            .metadata()
            .get("geo")
            .map(|t| Self::parse(t))
            .transpose()
    }
}

/// The JSON metadata of a GeoArrow extension type (`ARROW:extension:metadata`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GeoArrowMetadata {
    /// The CRS, if stated (absent or null: unknown).
    #[serde(default)]
    pub crs: Option<Value>,
    /// How `crs` is written (`projjson`, `wkt2:2019`, `authority_code`, `srid`).
    #[serde(default)]
    pub crs_type: Option<String>,
    /// `planar` (default), `spherical`, or an ellipsoidal algorithm name.
    #[serde(default)]
    pub edges: Option<String>,
}

impl GeoArrowMetadata {
    /// The GeoArrow extension of `field`: its name and metadata, if it has one.
    ///
    /// # Errors
    /// [`PolymatchError::Metadata`] if the metadata is not valid JSON.
    pub fn of(field: &Field) -> Result<Option<(String, Self)>> {
        let Some(name) = field.metadata().get(EXTENSION_NAME) else {
            return Ok(None);
        };
        if !name.starts_with("geoarrow.") {
            return Ok(None);
        }
        let meta = match field.metadata().get(EXTENSION_METADATA).map(|s| s.trim()) {
            None | Some("") => Self::default(),
            Some(text) => serde_json::from_str(text).map_err(|e| {
                PolymatchError::Metadata(format!(
                    "column {:?}: GeoArrow extension metadata is not valid JSON: {e}",
                    field.name()
                ))
            })?,
        };
        Ok(Some((name.clone(), meta)))
    }

    /// The CRS, if stated. A CRS given as a string keeps its string; PROJJSON sent as a
    /// JSON string is parsed.
    pub fn crs(&self) -> Option<Crs> {
        match self.crs.as_ref()? {
            Value::Null => None,
            Value::String(s) if s.trim_start().starts_with('{') => Some(Crs(serde_json::from_str(
                s,
            )
            .unwrap_or_else(|_| Value::String(s.clone())))),
            v => Some(Crs(v.clone())),
        }
    }
}

/// The edges a column states: planar (the default) or spherical; anything else (an
/// ellipsoidal algorithm) is refused.
fn parse_edges(column: &str, edges: Option<&str>) -> Result<Edges> {
    match edges {
        None | Some("planar") => Ok(Edges::Planar),
        Some("spherical") => Ok(Edges::Spherical),
        Some(other) => Err(PolymatchError::Metadata(format!(
            "geometry column {column:?} has edges {other:?}: polymatch reads \"planar\" \
             edges (straight in the coordinates) and \"spherical\" ones (great-circle arcs)"
        ))),
    }
}

/// The edges `field`'s GeoArrow extension metadata states (planar when it states none).
///
/// # Errors
/// [`PolymatchError::Metadata`] for invalid metadata or ellipsoidal edges.
pub fn field_edges(field: &Field) -> Result<Edges> {
    match GeoArrowMetadata::of(field)? {
        Some((_, meta)) => parse_edges(field.name(), meta.edges.as_deref()),
        None => Ok(Edges::Planar),
    }
}

/// What is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Points (`x`/`y` numbers, or point geometries).
    Points,
    /// Polygons (`x`/`y` lists, or polygon geometries).
    Polygons,
    /// Either (describing a file): every encoding is accepted.
    Any,
}

/// The columns the caller named (all `None`: detect).
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    /// A geometry column.
    pub geometry: Option<&'a str>,
    /// An x column (points only).
    pub x: Option<&'a str>,
    /// A y column (points only).
    pub y: Option<&'a str>,
}

/// Where the geometry is, as resolved from a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeometryColumns {
    /// One geometry column (WKB or GeoArrow).
    Geometry(String),
    /// Two coordinate columns (numbers for points, lists for polygons).
    Xy(String, String),
}

impl GeometryColumns {
    /// The column names, in order.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Self::Geometry(g) => vec![g.as_str()],
            Self::Xy(x, y) => vec![x.as_str(), y.as_str()],
        }
    }
}

/// A resolved geometry: the columns, how the geometry column is described, its CRS.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The columns.
    pub columns: GeometryColumns,
    /// The encoding: the GeoParquet encoding (`WKB`, `point`, ...) or the GeoArrow
    /// extension name (`geoarrow.wkb`, ...) or the Arrow type, for messages and metadata.
    pub encoding: Option<String>,
    /// The stated CRS (`None`: not stated).
    pub crs: Option<Crs>,
    /// The GeoParquet description of the column, if the schema had one.
    pub geoparquet: Option<GeoParquetColumn>,
    /// The stated edges (planar when not stated).
    pub edges: Edges,
}

/// The column names of `schema`, comma-separated (for messages).
pub fn column_names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn missing(schema: &Schema, name: &str) -> PolymatchError {
    PolymatchError::MissingColumn {
        name: name.to_string(),
        hint: format!(" (columns: {})", column_names(schema)),
    }
}

/// Resolve which columns of `schema` hold the geometry (see the module docs for the
/// rule), and read the metadata that describes them.
///
/// # Errors
/// [`PolymatchError::MissingColumn`] for a named column that is not there (or `x`
/// without `y`), [`PolymatchError::NoGeometry`] (nothing found, or an ambiguous choice:
/// the message names the candidates), [`PolymatchError::Metadata`] for malformed or
/// ellipsoidal edges, [`PolymatchError::UnsupportedGeometry`] for a declared encoding
/// of the wrong kind (polygons where points are expected, say).
pub fn resolve_geometry(schema: &Schema, role: Role, request: Request<'_>) -> Result<Resolved> {
    let geo = GeoParquetMetadata::from_schema(schema)?;
    let columns = choose(schema, role, request, geo.as_ref())?;
    let mut resolved = Resolved {
        columns,
        encoding: None,
        crs: None,
        geoparquet: None,
        edges: Edges::Planar,
    };
    if let GeometryColumns::Geometry(name) = &resolved.columns {
        let field = schema
            .field_with_name(name)
            .map_err(|_| missing(schema, name))?;
        let described = geo.as_ref().and_then(|g| g.columns.get(name));
        let extension = GeoArrowMetadata::of(field)?;
        if let Some(col) = described {
            resolved.edges = parse_edges(name, col.edges.as_deref())?;
            check_encoding(name, role, &col.encoding, "GeoParquet encoding")?;
            resolved.encoding = Some(col.encoding.clone());
            resolved.crs = col.crs();
            resolved.geoparquet = Some(col.clone());
        }
        if let Some((ext, meta)) = extension {
            let edges = parse_edges(name, meta.edges.as_deref())?;
            check_encoding(name, role, &ext, "")?;
            if described.is_none() {
                resolved.edges = edges;
                resolved.encoding = Some(ext);
                resolved.crs = meta.crs();
            }
        }
        if resolved.encoding.is_none() {
            resolved.encoding = Some(field.data_type().to_string());
        }
    }
    Ok(resolved)
}

/// Refuse a declared encoding of the wrong kind.
fn check_encoding(column: &str, role: Role, encoding: &str, what: &str) -> Result<()> {
    let e = encoding
        .strip_prefix("geoarrow.")
        .unwrap_or(encoding)
        .to_ascii_lowercase();
    let ok = match role {
        Role::Points => matches!(e.as_str(), "wkb" | "wkt" | "point" | "geometry"),
        Role::Polygons => matches!(
            e.as_str(),
            "wkb" | "wkt" | "polygon" | "multipolygon" | "geometry"
        ),
        Role::Any => true,
    };
    if ok {
        return Ok(());
    }
    Err(PolymatchError::UnsupportedGeometry {
        column: column.to_string(),
        found: if what.is_empty() {
            encoding.to_string()
        } else {
            format!("{what} {encoding:?}")
        },
        expected: match role {
            Role::Points => "points (WKB, or GeoArrow/GeoParquet point)".into(),
            _ => "polygons (WKB, or GeoArrow/GeoParquet polygon/multipolygon)".into(),
        },
        row: None,
    })
}

fn choose(
    schema: &Schema,
    role: Role,
    request: Request<'_>,
    geo: Option<&GeoParquetMetadata>,
) -> Result<GeometryColumns> {
    let has = |n: &str| schema.index_of(n).is_ok();
    // 1. named
    if let Some(g) = request.geometry {
        if !has(g) {
            return Err(missing(schema, g));
        }
        return Ok(GeometryColumns::Geometry(g.to_string()));
    }
    if request.x.is_some() || request.y.is_some() {
        let (x, y) = (request.x.unwrap_or("x"), request.y.unwrap_or("y"));
        for n in [x, y] {
            if !has(n) {
                return Err(missing(schema, n));
            }
        }
        return Ok(GeometryColumns::Xy(x.to_string(), y.to_string()));
    }
    // 2. declared: the GeoParquet primary column, else the one GeoArrow-typed column
    if let Some(g) = geo {
        if !has(&g.primary_column) {
            return Err(PolymatchError::Metadata(format!(
                "GeoParquet 'geo' metadata names the primary geometry column {:?}, which is not in the data (columns: {}); name the geometry column to use, or drop the stale metadata",
                g.primary_column,
                column_names(schema)
            )));
        }
        return Ok(GeometryColumns::Geometry(g.primary_column.clone()));
    }
    let tagged: Vec<&str> = schema
        .fields()
        .iter()
        .filter(|f| {
            f.metadata()
                .get(EXTENSION_NAME)
                .is_some_and(|e| e.starts_with("geoarrow."))
        })
        .map(|f| f.name().as_str())
        .collect();
    match tagged.as_slice() {
        [one] => return Ok(GeometryColumns::Geometry(one.to_string())),
        [] => {}
        many => {
            return Err(PolymatchError::NoGeometry(format!(
                "several GeoArrow geometry columns ({}) and no GeoParquet primary column: name the one to use (geometry=..., CLI --{}-geometry)",
                many.join(", "),
                if role == Role::Points { "point" } else { "polygon" }
            )))
        }
    }
    // 3. x and y
    match (has("x"), has("y")) {
        (true, true) => return Ok(GeometryColumns::Xy("x".into(), "y".into())),
        (true, false) | (false, true) if !GEOMETRY_NAMES.iter().any(|n| has(n)) => {
            return Err(missing(schema, if has("x") { "y" } else { "x" }));
        }
        _ => {}
    }
    // 4. a geometry column by name
    if let Some(n) = GEOMETRY_NAMES.iter().find(|n| has(n)) {
        return Ok(GeometryColumns::Geometry(n.to_string()));
    }
    Err(PolymatchError::NoGeometry(match role {
        Role::Points | Role::Any => format!(
            "expected point columns \"x\" and \"y\", or a GeoArrow/WKB point column (declared, or named one of {}); found columns: {}",
            GEOMETRY_NAMES.join(", "),
            column_names(schema)
        ),
        Role::Polygons => format!(
            "expected a GeoArrow or WKB column (declared, or named one of {}), or list columns \"x\" and \"y\"; found columns: {}",
            GEOMETRY_NAMES.join(", "),
            column_names(schema)
        ),
    }))
}

/// Is `field` a geometry column: described by `geo`, GeoArrow-typed, or a WKB column
/// with one of the [`GEOMETRY_NAMES`] (what the resolver's rule 4 would read)? Used to
/// describe kept geometry columns in an output's `geo` metadata.
pub fn is_geometry_field(field: &Field, geo: Option<&GeoParquetMetadata>) -> bool {
    geo.is_some_and(|g| g.columns.contains_key(field.name()))
        || field
            .metadata()
            .get(EXTENSION_NAME)
            .is_some_and(|e| e.starts_with("geoarrow."))
        || (is_binary(field.data_type()) && GEOMETRY_NAMES.contains(&field.name().as_str()))
}

/// The GeoParquet description to write for a kept geometry column: the input's own if it
/// had one, else one made from its GeoArrow type or its Arrow type, with `crs`.
pub fn describe_column(
    field: &Field,
    source: Option<&GeoParquetColumn>,
    crs: Option<&Crs>,
) -> Value {
    let mut v = match source {
        Some(c) => {
            let mut m = serde_json::Map::new();
            m.insert("encoding".into(), Value::String(c.encoding.clone()));
            m.insert(
                "geometry_types".into(),
                Value::Array(
                    c.geometry_types
                        .iter()
                        .cloned()
                        .map(Value::String)
                        .collect(),
                ),
            );
            for (k, v) in &c.other {
                if k != "covering" {
                    m.insert(k.clone(), v.clone());
                }
            }
            if let Some(e) = &c.edges {
                m.insert("edges".into(), Value::String(e.clone()));
            }
            Value::Object(m)
        }
        None => {
            let ext = field.metadata().get(EXTENSION_NAME).map(String::as_str);
            let encoding = match ext {
                Some("geoarrow.point") => "point",
                Some("geoarrow.polygon") => "polygon",
                Some("geoarrow.multipolygon") => "multipolygon",
                Some("geoarrow.linestring") => "linestring",
                Some("geoarrow.multipoint") => "multipoint",
                Some("geoarrow.multilinestring") => "multilinestring",
                _ => "WKB",
            };
            serde_json::json!({"encoding": encoding, "geometry_types": []})
        }
    };
    v["crs"] = crs.map(|c| c.0.clone()).unwrap_or(Value::Null);
    v
}

/// True for an Arrow type that holds WKB.
pub fn is_binary(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn schema(fields: &[(&str, DataType, Option<&str>)], geo: Option<&str>) -> Schema {
        let fields: Vec<Field> = fields
            .iter()
            .map(|(n, t, ext)| {
                let f = Field::new(*n, t.clone(), true);
                match ext {
                    Some(e) => f.with_metadata(HashMap::from([(
                        EXTENSION_NAME.to_string(),
                        e.to_string(),
                    )])),
                    None => f,
                }
            })
            .collect();
        let s = Schema::new(fields);
        match geo {
            Some(g) => s.with_metadata(HashMap::from([("geo".to_string(), g.to_string())])),
            None => s,
        }
    }

    #[test]
    fn the_rule_order() {
        let xy_and_wkb = schema(
            &[
                ("x", DataType::Float64, None),
                ("y", DataType::Float64, None),
                ("geometry", DataType::Binary, None),
            ],
            None,
        );
        let r = resolve_geometry(&xy_and_wkb, Role::Points, Request::default()).unwrap();
        assert_eq!(r.columns, GeometryColumns::Xy("x".into(), "y".into()));
        let named = Request {
            geometry: Some("geometry"),
            ..Request::default()
        };
        let r = resolve_geometry(&xy_and_wkb, Role::Points, named).unwrap();
        assert_eq!(r.columns, GeometryColumns::Geometry("geometry".into()));
        let tagged = schema(
            &[
                ("x", DataType::Float64, None),
                ("y", DataType::Float64, None),
                ("g", DataType::Binary, Some("geoarrow.wkb")),
            ],
            None,
        );
        let r = resolve_geometry(&tagged, Role::Points, Request::default()).unwrap();
        assert_eq!(r.columns, GeometryColumns::Geometry("g".into()));
        let two = schema(
            &[
                ("a", DataType::Binary, Some("geoarrow.wkb")),
                ("b", DataType::Binary, Some("geoarrow.wkb")),
            ],
            None,
        );
        let e = resolve_geometry(&two, Role::Points, Request::default()).unwrap_err();
        assert!(e.to_string().contains("a, b"), "{e}");
        let geo = r#"{"primary_column": "b", "columns": {"b": {"encoding": "WKB"}}}"#;
        let declared = schema(
            &[
                ("a", DataType::Binary, Some("geoarrow.wkb")),
                ("b", DataType::Binary, None),
            ],
            Some(geo),
        );
        let r = resolve_geometry(&declared, Role::Points, Request::default()).unwrap();
        assert_eq!(r.columns, GeometryColumns::Geometry("b".into()));
        assert_eq!(r.crs.unwrap().short(), "OGC:CRS84");
    }

    #[test]
    fn explicit_null_crs_is_unknown_and_missing_is_crs84() {
        let m = GeoParquetMetadata::parse(r#"{"primary_column": "g", "columns": {"g": {"encoding": "WKB", "crs": null}, "h": {"encoding": "WKB"}}}"#).unwrap();
        assert!(m.columns["g"].crs().is_none());
        assert_eq!(m.columns["h"].crs().unwrap().short(), "OGC:CRS84");
    }
}
