//! The `polymatch` command line: match points to polygons, Parquet in, Parquet out.
//! Thin over the library; the binary (`src/bin/polymatch.rs`) and the Python package's
//! `polymatch` script both call [`run`].
//!
//! Exit codes: 0 success, 1 bad input data or files, 2 usage error, 3 internal error,
//! 130 interrupted (Ctrl-C). Errors are one line on stderr, naming the file, column or row.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::io::parquet::file_info;
use crate::io::writer::{output_properties, write_parquet};
use crate::io::{Keep, PointSpec};
use crate::matcher::{Matcher, PolygonSide};
use crate::matching::with_threads;
use crate::pipeline::{load_polygons, match_parquet, ParquetJob};
use crate::sphere::{resolve_metric, Metric};
use crate::synth::SynthSpec;
use crate::{How, MatchOptions, PolymatchError, Predicate, RankBy};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use parquet::file::metadata::KeyValue;

/// Exit code: bad input (file, column, row).
pub const EXIT_INPUT: u8 = 1;
/// Exit code: usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: internal error (a bug).
pub const EXIT_INTERNAL: u8 = 3;
/// Exit code: interrupted by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser)]
#[command(
    name = "polymatch",
    version,
    about = "Match 2-D points to polygons: for each point, the smallest-area polygon whose center is within --max-dist.",
    after_help = "Exit codes: 0 success, 1 bad input (file, column, row), 2 usage error, 3 internal error, 130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum PredicateArg {
    Center,
    Contains,
    Covers,
    Dwithin,
}

#[derive(Clone, Copy, ValueEnum)]
enum MetricArg {
    Planar,
    Sphere,
}

#[derive(Clone, Copy, ValueEnum)]
enum HowArg {
    Inner,
    Left,
}

/// The match options, as every subcommand that matches takes them: the one place they
/// are spelled out for the command line (Python's are parsed once in the binding crate).
#[derive(clap::Args)]
struct MatchArgs {
    /// Which polygons are a point's candidates: center (the polygon's center is within
    /// --max-dist), contains (the point is in the polygon's interior), covers (in the
    /// interior or on the boundary) or dwithin (the distance to the polygon, 0 inside
    /// it, is < --max-dist).
    #[arg(long, value_enum, default_value = "center")]
    predicate: PredicateArg,
    /// With --predicate center: candidates are polygons whose center is at distance
    /// < max-dist ("inf" allowed; default 10). With dwithin (required): polygons at
    /// distance < max-dist ("inf": every polygon). contains and covers take none.
    #[arg(long, allow_negative_numbers = true)]
    max_dist: Option<f64>,
    /// inner: matched points only; left: every point.
    #[arg(long, value_enum, default_value = "inner")]
    how: HowArg,
    /// Write every (point, candidate) pair instead of the best match.
    #[arg(long)]
    all_candidates: bool,
    /// What makes a candidate the best: "area" (smallest), "distance" (nearest center)
    /// or the name of a numeric polygon column (smallest value; nulls last).
    #[arg(long, default_value = "area")]
    rank_by: String,
    /// The largest area, distance or value is best instead of the smallest.
    #[arg(long)]
    descending: bool,
    /// Write the k best candidates of each point, in rank order, with a "rank" column
    /// (1-based) when k > 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    k: u32,
    /// planar: coordinates in the data's units (the default). sphere: x is longitude and
    /// y latitude in degrees; --max-dist and the distance column are great-circle metres,
    /// areas square metres. Without it, a geographic CRS gets a warning on stderr.
    #[arg(long, value_enum)]
    metric: Option<MetricArg>,
}

impl MatchArgs {
    /// The library's options, checked.
    fn options(&self) -> Result<MatchOptions, PolymatchError> {
        let predicate = match self.predicate {
            PredicateArg::Center => Predicate::Center,
            PredicateArg::Contains => Predicate::Contains,
            PredicateArg::Covers => Predicate::Covers,
            PredicateArg::Dwithin => Predicate::Dwithin,
        };
        let options = MatchOptions {
            predicate,
            max_dist: predicate.max_dist(self.max_dist)?,
            how: match self.how {
                HowArg::Inner => How::Inner,
                HowArg::Left => How::Left,
            },
            all_candidates: self.all_candidates,
            rank_by: self.rank_by.parse::<RankBy>()?,
            descending: self.descending,
            k: self.k,
            metric: self.metric().unwrap_or_default(),
            ..MatchOptions::default()
        };
        options.validate()?;
        Ok(options)
    }

    /// The metric, if given.
    fn metric(&self) -> Option<Metric> {
        self.metric.map(|m| match m {
            MetricArg::Planar => Metric::Planar,
            MetricArg::Sphere => Metric::Sphere,
        })
    }
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run: its size does not matter
enum Command {
    /// Match a points file against a polygons file, streaming the points.
    Match {
        /// Polygons: GeoParquet (WKB or native polygon/multipolygon) or Parquet with x/y list columns.
        #[arg(long)]
        polygons: PathBuf,
        /// Points: Parquet with x/y columns, or GeoParquet points.
        #[arg(long)]
        points: PathBuf,
        /// Output Parquet file (written atomically).
        #[arg(long)]
        out: PathBuf,
        /// What a candidate is, and which is best.
        #[command(flatten)]
        options: MatchArgs,
        /// Point columns to carry into the output (comma-separated; a name that collides
        /// with another output column gets the suffix "_left").
        #[arg(long, value_delimiter = ',')]
        keep: Vec<String>,
        /// Polygon columns to carry into the output (comma-separated; a name that collides
        /// gets the suffix "_right"). Kept geometry columns are described in the output's
        /// GeoParquet metadata.
        #[arg(long, value_delimiter = ',')]
        keep_polygons: Vec<String>,
        /// Match even if the points and the polygons state different CRS.
        #[arg(long)]
        allow_crs_mismatch: bool,
        /// Name of the points' x column.
        #[arg(long)]
        x: Option<String>,
        /// Name of the points' y column.
        #[arg(long)]
        y: Option<String>,
        /// Name of the points' geometry column.
        #[arg(long)]
        point_geometry: Option<String>,
        /// Name of the polygons' geometry column.
        #[arg(long)]
        polygon_geometry: Option<String>,
        /// Worker threads (default: RAYON_NUM_THREADS, else one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Points per batch read and matched.
        #[arg(long, default_value_t = 262_144)]
        batch_rows: usize,
        /// No progress bar and no summary.
        #[arg(long)]
        quiet: bool,
    },
    /// Write deterministic synthetic polygons (GeoParquet) and points (Parquet).
    Generate {
        /// Number of polygons.
        #[arg(long)]
        polygons: usize,
        /// Number of points.
        #[arg(long)]
        points: usize,
        /// Random seed.
        #[arg(long, default_value_t = 6)]
        seed: u64,
        /// Cluster polygons and points instead of spreading them uniformly.
        #[arg(long)]
        clustered: bool,
        /// Vertices per polygon.
        #[arg(long, default_value_t = 10)]
        vertices: usize,
        /// Average candidates per point at --max-dist (uniform data).
        #[arg(long, default_value_t = 30.0)]
        candidates: f64,
        /// The match distance the density is tuned for.
        #[arg(long, default_value_t = 10.0)]
        max_dist: f64,
        /// Output folder (polygons.parquet, points.parquet).
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// Show what polymatch sees in a Parquet file.
    Info {
        /// The file.
        file: PathBuf,
    },
}

/// Parse `args` (the first is the program name) and run; returns the exit code. A job
/// stops (exit code 130, no output left) when `cancel` is set: the binary sets it from
/// a Ctrl-C handler, the Python package from Python's own signal handling. No signal
/// handler is installed here.
pub fn run_from_args(args: impl IntoIterator<Item = OsString>, cancel: &AtomicBool) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Through the print macros (not clap's own writer): the same text, and test
            // harnesses capture it like any other output.
            if e.use_stderr() {
                eprint!("{}", e.render());
                return EXIT_USAGE;
            }
            print!("{}", e.render());
            return 0;
        }
    };
    // A bug must not print a backtrace at a user: one line, and a distinct exit code.
    crate::io::guard::set_one_line(true);
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli, cancel))) {
        Ok(Ok(())) => 0,
        Ok(Err(PolymatchError::Cancelled)) => {
            eprintln!("polymatch: interrupted; no output written");
            EXIT_INTERRUPTED
        }
        Ok(Err(e)) => {
            eprintln!("polymatch: error: {e}");
            let usage = matches!(e.root(), PolymatchError::InvalidArgument(_));
            if usage {
                EXIT_USAGE
            } else {
                EXIT_INPUT
            }
        }
        Err(_) => EXIT_INTERNAL,
    };
    crate::io::guard::set_one_line(false);
    code
}

fn run(cli: Cli, cancel: &AtomicBool) -> Result<(), PolymatchError> {
    match cli.command {
        Command::Match {
            polygons,
            points,
            out,
            options,
            keep,
            keep_polygons,
            x,
            y,
            point_geometry,
            polygon_geometry,
            threads,
            batch_rows,
            quiet,
            allow_crs_mismatch,
        } => {
            let keep = column_list(keep);
            let keep_polygons = column_list(keep_polygons);
            let given = options.metric();
            let options = options.options()?;
            with_threads(threads, || {
                let start = Instant::now();
                let file = load_polygons(
                    &polygons,
                    polygon_geometry.as_deref(),
                    &keep_polygons,
                    &options,
                )?;
                let (_, warning) =
                    resolve_metric(given, file.crs.as_ref()).map_err(|e| e.in_file(&polygons))?;
                if let Some(w) = warning {
                    eprintln!("polymatch: warning: {w}");
                }
                let job = ParquetJob {
                    matcher: Matcher {
                        polygons: PolygonSide {
                            index: &file.rankings,
                            attributes: Some(&file.attributes),
                            crs: file.crs.as_ref(),
                            outlines: file.outlines.as_ref(),
                        },
                        options,
                        keep: Keep {
                            points: &keep,
                            polygons: &keep_polygons,
                        },
                        allow_crs_mismatch,
                    },
                    polygons_path: Some(&polygons),
                    points_path: &points,
                    out_path: &out,
                    spec: PointSpec {
                        x: x.as_deref(),
                        y: y.as_deref(),
                        geometry: point_geometry.as_deref(),
                    },
                    batch_rows,
                    cancel,
                    job_id: None,
                };
                let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
                    let bar = ProgressBar::new(0);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{bar:40} {human_pos}/{human_len} points  {per_sec}  ETA {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar
                });
                let summary = match_parquet(&job, |done, total| {
                    if let Some(bar) = &bar {
                        bar.set_length(total);
                        bar.set_position(done);
                    }
                })?;
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                if !quiet {
                    let secs = start.elapsed().as_secs_f64();
                    eprintln!(
                        "polymatch: {} points, {} matched, {} rows written to {} in {:.2} s ({:.0} points/s)",
                        summary.points,
                        summary.matched,
                        summary.rows_written,
                        out.display(),
                        secs,
                        summary.points as f64 / secs.max(1e-9)
                    );
                }
                Ok(())
            })?
        }
        Command::Generate {
            polygons,
            points,
            seed,
            clustered,
            vertices,
            candidates,
            max_dist,
            out_dir,
        } => {
            if vertices < 3
                || candidates.is_nan()
                || candidates <= 0.0
                || !max_dist.is_finite()
                || max_dist <= 0.0
            {
                return Err(PolymatchError::InvalidArgument(
                    "--vertices must be >= 3, --candidates > 0 and --max-dist finite and > 0"
                        .into(),
                ));
            }
            std::fs::create_dir_all(&out_dir)
                .map_err(|e| PolymatchError::from(e).in_file(&out_dir))?;
            let spec = SynthSpec {
                polygons,
                points,
                seed,
                clustered,
                vertices,
                max_dist,
                candidates,
            };
            let (batches, bbox) = spec.polygon_batches(65_536);
            let geo = serde_json::json!({
                "version": "1.1.0",
                "primary_column": "geometry",
                // "crs": null (unknown): the synthetic coordinates are not longitude/latitude,
                // which an omitted crs would state (GeoParquet's default, OGC:CRS84).
                "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"], "bbox": bbox, "crs": null}},
            });
            let schema = batches.first().map(|b| b.schema()).unwrap_or_else(|| {
                SynthSpec {
                    polygons: 1,
                    ..spec
                }
                .polygon_batches(1)
                .0[0]
                    .schema()
            });
            let poly_path = out_dir.join("polygons.parquet");
            write_parquet(
                &poly_path,
                &schema,
                &batches,
                output_properties(vec![KeyValue::new("geo".into(), geo.to_string())])?,
            )?;
            let point_path = out_dir.join("points.parquet");
            let rows = 1 << 20;
            let point_batches: Vec<_> = (0..points.div_ceil(rows))
                .map(|i| spec.point_batch(i * rows, ((i + 1) * rows).min(points)))
                .collect();
            write_parquet(
                &point_path,
                &SynthSpec::point_schema(),
                &point_batches,
                output_properties(vec![])?,
            )?;
            eprintln!(
                "polymatch: wrote {polygons} polygons to {} and {points} points to {} (square of side {:.1})",
                poly_path.display(),
                point_path.display(),
                spec.side()
            );
            Ok(())
        }
        Command::Info { file } => {
            use std::fmt::Write as _;
            let info = file_info(&file)?;
            let mut text = String::new();
            let _ = writeln!(text, "file:        {}", file.display());
            let _ = writeln!(text, "rows:        {}", info.rows);
            let _ = writeln!(text, "row groups:  {}", info.row_groups);
            let _ = match &info.geometry {
                Some((col, enc)) => writeln!(text, "geometry:    {col} ({enc})"),
                None => writeln!(text, "geometry:    none found"),
            };
            let crs = info.crs.as_deref().unwrap_or("not stated");
            let _ = writeln!(text, "crs:         {crs}");
            let _ = match info.bbox {
                // `+ 0.0` turns -0.0 into 0.0: "-0" in a bounding box only confuses.
                Some(b) => writeln!(
                    text,
                    "bbox:        [{}, {}, {}, {}]",
                    b[0] + 0.0,
                    b[1] + 0.0,
                    b[2] + 0.0,
                    b[3] + 0.0
                ),
                None => writeln!(text, "bbox:        unknown"),
            };
            let _ = writeln!(text, "columns:");
            for f in info.schema.fields() {
                let _ = writeln!(text, "  {}: {}", f.name(), f.data_type());
            }
            write_stdout(&text)
        }
    }
}

/// Write to stdout; a reader that went away (`polymatch info f | head`) is not an error.
fn write_stdout(text: &str) -> Result<(), PolymatchError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// A comma-separated column list as typed: names trimmed, empty entries dropped, so
/// `--keep "id, name"` is `id` and `name`, and `--keep ""` keeps nothing.
fn column_list(names: Vec<String>) -> Vec<String> {
    names
        .into_iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}
