//! Coordinate reference systems: what a file or a GeoArrow type states, whether two
//! statements name the same CRS, and what kind of CRS it is. The one place this is
//! decided: the matcher, the Parquet pipeline and Dask's tiles (through
//! `polymatch._core.same_crs`) all compare CRS with [`Crs::same_as`].
//!
//! Two statements are the same CRS when both name an authority and code and those
//! agree (`"EPSG:32633"`, `"urn:ogc:def:crs:EPSG::32633"`, a PROJJSON with
//! `"id": {"authority": "EPSG", "code": 32633}` and a WKT whose own `ID[...]` says so are
//! one CRS), else when their definitions are equal (PROJJSON's `$schema` aside).

use serde_json::Value;

use crate::error::{PolymatchError, Result};

/// A coordinate reference system as stated by a file or a GeoArrow type: a PROJJSON
/// object, or a string (`"EPSG:32633"`, WKT, a URN).
#[derive(Debug, Clone)]
pub struct Crs(pub Value);

impl Crs {
    /// GeoParquet's default when a column does not say: OGC:CRS84 (longitude, latitude).
    pub fn crs84() -> Self {
        Self(Value::String("OGC:CRS84".into()))
    }

    /// The (authority, code) pair of this CRS, upper-cased, if it names one: a PROJJSON
    /// `id` (or a single-entry `ids`), an `AUTH:CODE` string, a `urn:ogc:def:crs:AUTH::CODE`
    /// URN, or a WKT whose last `ID[...]`/`AUTHORITY[...]` is the CRS's own.
    pub fn authority_code(&self) -> Option<(String, String)> {
        fn norm(a: &str, c: &str) -> Option<(String, String)> {
            let (a, c) = (a.trim().trim_matches('"'), c.trim().trim_matches('"'));
            (!a.is_empty() && !c.is_empty()).then(|| (a.to_uppercase(), c.to_uppercase()))
        }
        fn code(v: &Value) -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        }
        match &self.0 {
            Value::Object(o) => {
                let id = o.get("id").or_else(|| match o.get("ids") {
                    Some(Value::Array(ids)) if ids.len() == 1 => ids.first(),
                    _ => None,
                })?;
                norm(id.get("authority")?.as_str()?, &code(id.get("code")?)?)
            }
            Value::String(s) => {
                let s = s.trim();
                if let Some(rest) = s.strip_prefix("urn:ogc:def:crs:") {
                    // urn:ogc:def:crs:EPSG::32633 or urn:ogc:def:crs:OGC:1.3:CRS84
                    let parts: Vec<&str> = rest.split(':').collect();
                    return norm(parts.first()?, parts.last()?);
                }
                if s.contains('[') {
                    return wkt_authority(s);
                }
                let (a, c) = s.split_once(':')?;
                norm(a, c)
            }
            _ => None,
        }
    }

    /// True if `self` and `other` are the same CRS: by authority and code where both
    /// name one, else by their full definitions (ignoring PROJJSON's `$schema` version).
    pub fn same_as(&self, other: &Crs) -> bool {
        match (self.authority_code(), other.authority_code()) {
            (Some(a), Some(b)) => a == b,
            _ => strip_schema(&self.0) == strip_schema(&other.0),
        }
    }

    /// A short human name: `EPSG:32633`, else the PROJJSON `name`, else the string.
    pub fn short(&self) -> String {
        if let Some((a, c)) = self.authority_code() {
            return format!("{a}:{c}");
        }
        match &self.0 {
            Value::String(s) if s.chars().count() <= 60 => s.clone(),
            Value::String(s) => format!("{}...", s.chars().take(57).collect::<String>()),
            v => v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("a PROJJSON CRS")
                .to_string(),
        }
    }
}

/// The authority of a WKT CRS: the last top-level `ID[...]` (WKT2) or `AUTHORITY[...]`
/// (WKT1) of the outermost bracket, which is the CRS's own (inner ones belong to parts).
fn wkt_authority(wkt: &str) -> Option<(String, String)> {
    let bytes = wkt.as_bytes();
    let (mut depth, mut best) = (0usize, None);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'(' => depth += 1,
            b']' | b')' => depth = depth.saturating_sub(1),
            _ if depth == 1 => {
                let rest = &wkt[i..];
                for key in ["ID[", "AUTHORITY["] {
                    if rest.len() >= key.len() && rest[..key.len()].eq_ignore_ascii_case(key) {
                        let body = &rest[key.len()..];
                        let end = body.find(']')?;
                        let mut it = body[..end].split(',');
                        if let (Some(a), Some(c)) = (it.next(), it.next()) {
                            let (a, c) = (a.trim().trim_matches('"'), c.trim().trim_matches('"'));
                            best = Some((a.to_uppercase(), c.to_uppercase()));
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    best
}

fn strip_schema(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| k.as_str() != "$schema")
                .map(|(k, v)| (k.clone(), strip_schema(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The CRS of two inputs matched together: the stated one if only one states a CRS,
/// either if they agree. Unstated (`None`) is never a conflict.
///
/// # Errors
/// [`PolymatchError::Metadata`] if both state different CRS and `allow_mismatch` is
/// false; the message says how to go on.
pub fn common_crs(
    polygons: Option<&Crs>,
    points: Option<&Crs>,
    allow_mismatch: bool,
) -> Result<Option<Crs>> {
    match (polygons, points) {
        (Some(a), Some(b)) if !a.same_as(b) && !allow_mismatch => {
            Err(PolymatchError::Metadata(format!(
                "the polygons and the points have different CRS ({} vs {}); reproject one of them, \
                 or pass allow_crs_mismatch=True (CLI: --allow-crs-mismatch) to match the numbers as they are",
                a.short(),
                b.short()
            )))
        }
        (Some(a), _) => Ok(Some(a.clone())),
        (None, b) => Ok(b.cloned()),
    }
}

/// What kind of coordinates a CRS has, as far as its statement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrsKind {
    /// Longitude and latitude in degrees (e.g. `OGC:CRS84`, `EPSG:4326`).
    Geographic,
    /// Planar coordinates (e.g. UTM, Web Mercator), in [`Crs::unit`]s.
    Projected,
    /// The statement does not say (an authority code outside the few polymatch knows,
    /// without a definition to read).
    Unknown,
}

/// Authority codes of common geographic 2-D CRS (longitude/latitude in degrees): the
/// ones a statement without a definition is recognised by.
const GEOGRAPHIC_CODES: [(&str, &str); 16] = [
    ("OGC", "CRS84"),
    ("OGC", "CRS83"),
    ("OGC", "CRS27"),
    ("EPSG", "4326"),
    ("EPSG", "4269"),
    ("EPSG", "4258"),
    ("EPSG", "4267"),
    ("EPSG", "4283"),
    ("EPSG", "4167"),
    ("EPSG", "4617"),
    ("EPSG", "4674"),
    ("EPSG", "4490"),
    ("EPSG", "4612"),
    ("EPSG", "6668"),
    ("EPSG", "7844"),
    ("EPSG", "4230"),
];

impl Crs {
    /// Geographic (degrees), projected, or unknown: from a PROJJSON `type`, a WKT's
    /// outermost keyword, or, for a bare authority code, a short list of common
    /// geographic codes and the EPSG codes of UTM zones (326xx, 327xx) and Web Mercator
    /// (3857).
    pub fn kind(&self) -> CrsKind {
        match &self.0 {
            Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                Some("GeographicCRS") => return CrsKind::Geographic,
                Some("ProjectedCRS") => return CrsKind::Projected,
                _ => {}
            },
            Value::String(s) if s.contains('[') => {
                let head = s.trim_start().split('[').next().unwrap_or("").trim();
                match head.to_ascii_uppercase().as_str() {
                    "GEOGCS" | "GEOGCRS" | "GEOGRAPHICCRS" => return CrsKind::Geographic,
                    "PROJCS" | "PROJCRS" | "PROJECTEDCRS" => return CrsKind::Projected,
                    _ => {}
                }
            }
            _ => {}
        }
        match self.authority_code() {
            Some((a, c)) if GEOGRAPHIC_CODES.contains(&(a.as_str(), c.as_str())) => {
                CrsKind::Geographic
            }
            Some((a, c)) if a == "EPSG" && (utm_zone(&c) || c == "3857") => CrsKind::Projected,
            _ => CrsKind::Unknown,
        }
    }

    /// The unit of the coordinates, lower-case (`"degree"`, `"metre"`, `"us survey
    /// foot"`, ...), if the statement says or the code is one [`Crs::kind`] knows.
    pub fn unit(&self) -> Option<String> {
        let named = match &self.0 {
            Value::Object(o) => o
                .get("coordinate_system")
                .and_then(|cs| cs.get("axis"))
                .and_then(|axes| axes.get(0))
                .and_then(|axis| axis.get("unit"))
                .and_then(|u| match u {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(u) => u.get("name").and_then(Value::as_str).map(str::to_string),
                    _ => None,
                }),
            Value::String(s) if s.contains('[') => wkt_unit(s),
            _ => None,
        };
        if let Some(u) = named {
            let u = u.to_lowercase();
            return Some(if u == "meter" { "metre".into() } else { u });
        }
        match self.kind() {
            CrsKind::Geographic => Some("degree".into()),
            CrsKind::Projected if self.authority_code().is_some() => Some("metre".into()),
            _ => None,
        }
    }
}

fn utm_zone(code: &str) -> bool {
    code.parse::<u32>()
        .is_ok_and(|c| (32601..=32660).contains(&c) || (32701..=32760).contains(&c))
}

/// The name of a WKT's last top-level `UNIT[...]` or `LENGTHUNIT[...]`/`ANGLEUNIT[...]`
/// (the CRS's own: WKT1 puts it after the projection parameters; WKT2 inside the
/// coordinate system, at the top level of the CRS too).
fn wkt_unit(wkt: &str) -> Option<String> {
    let bytes = wkt.as_bytes();
    let (mut depth, mut best) = (0usize, None);
    for i in 0..bytes.len() {
        match bytes[i] {
            b'[' | b'(' => depth += 1,
            b']' | b')' => depth = depth.saturating_sub(1),
            _ if depth == 1 => {
                let rest = &wkt[i..];
                for key in ["UNIT[", "LENGTHUNIT[", "ANGLEUNIT["] {
                    let preceded = i > 0 && bytes[i - 1].is_ascii_alphabetic();
                    if !preceded
                        && rest.len() >= key.len()
                        && rest[..key.len()].eq_ignore_ascii_case(key)
                    {
                        let body = &rest[key.len()..];
                        let name = body.split(',').next()?.trim().trim_matches('"');
                        best = Some(name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn s(text: &str) -> Crs {
        Crs(Value::String(text.into()))
    }

    #[test]
    fn one_crs_in_every_spelling() {
        let projjson = json!({"type": "ProjectedCRS", "name": "WGS 84 / UTM zone 33N",
                              "id": {"authority": "EPSG", "code": 32633}});
        let spellings = [
            s("EPSG:32633"),
            s("epsg:32633"),
            s("urn:ogc:def:crs:EPSG::32633"),
            Crs(projjson),
            s(
                r#"PROJCRS["WGS 84 / UTM zone 33N",BASEGEOGCRS["WGS 84",ID["EPSG",4326]],ID["EPSG",32633]]"#,
            ),
        ];
        for a in &spellings {
            for b in &spellings {
                assert!(a.same_as(b), "{a:?} vs {b:?}");
            }
            assert!(!a.same_as(&s("EPSG:32634")));
            assert_eq!(a.kind(), CrsKind::Projected, "{a:?}");
        }
        assert!(s("EPSG:4326").same_as(&Crs(json!({"id": {"authority": "EPSG", "code": "4326"}}))));
    }

    #[test]
    fn crs_spellings() {
        let projjson = Crs(
            json!({"$schema": "https://proj.org/schemas/v0.7/projjson.schema.json", "name": "WGS 84 / UTM zone 33N", "id": {"authority": "EPSG", "code": 32633}}),
        );
        for s in ["EPSG:32633", "epsg:32633", "urn:ogc:def:crs:EPSG::32633"] {
            assert!(projjson.same_as(&Crs(Value::String(s.into()))), "{s}");
        }
        let wkt = r#"PROJCRS["WGS 84 / UTM zone 33N",BASEGEOGCRS["WGS 84",ID["EPSG",4326]],ID["EPSG",32633]]"#;
        assert!(projjson.same_as(&Crs(Value::String(wkt.into()))));
        let crs84 =
            Crs(json!({"name": "WGS 84 (CRS84)", "id": {"authority": "OGC", "code": "CRS84"}}));
        assert!(crs84.same_as(&Crs::crs84()));
        assert!(!crs84.same_as(&projjson));
        assert!(!Crs(Value::String("EPSG:4326".into())).same_as(&Crs::crs84()));
        // no authority on one side: full definitions, ignoring the PROJJSON schema version
        let a = Crs(json!({"$schema": "v0.5", "name": "local", "type": "EngineeringCRS"}));
        let b = Crs(json!({"$schema": "v0.7", "name": "local", "type": "EngineeringCRS"}));
        assert!(a.same_as(&b));
        assert!(common_crs(Some(&a), None, false).unwrap().is_some());
        assert!(common_crs(None, None, false).unwrap().is_none());
        assert!(common_crs(Some(&crs84), Some(&projjson), false).is_err());
        assert!(common_crs(Some(&crs84), Some(&projjson), true).is_ok());
    }

    #[test]
    fn kind_and_unit() {
        assert_eq!(Crs::crs84().kind(), CrsKind::Geographic);
        assert_eq!(Crs::crs84().unit().as_deref(), Some("degree"));
        assert_eq!(s("EPSG:4326").kind(), CrsKind::Geographic);
        assert_eq!(s("EPSG:3857").unit().as_deref(), Some("metre"));
        assert_eq!(s("EPSG:2263").kind(), CrsKind::Unknown);
        assert_eq!(s("EPSG:2263").unit(), None);
        let wkt1 = r#"PROJCS["NAD83 / New York Long Island (ftUS)",GEOGCS["NAD83",UNIT["degree",0.0174532925199433]],UNIT["US survey foot",0.304800609601219],AUTHORITY["EPSG","2263"]]"#;
        assert_eq!(s(wkt1).kind(), CrsKind::Projected);
        assert_eq!(s(wkt1).unit().as_deref(), Some("us survey foot"));
        let geog = json!({"type": "GeographicCRS", "coordinate_system": {"axis": [
            {"name": "Latitude", "unit": "degree"}, {"name": "Longitude", "unit": "degree"}]}});
        assert_eq!(Crs(geog.clone()).kind(), CrsKind::Geographic);
        assert_eq!(Crs(geog).unit().as_deref(), Some("degree"));
        let metres = json!({"type": "ProjectedCRS", "coordinate_system": {"axis": [
            {"name": "Easting", "unit": {"type": "LinearUnit", "name": "meter"}}]}});
        assert_eq!(Crs(metres).unit().as_deref(), Some("metre"));
    }
}
