//! The admin page's chart: sign-ins, refusals and denials per hour over 7 days, as SVG, and
//! the same numbers as a table (the chart's text alternative for screen readers and keyboards).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plotters::prelude::*;
use serde::Serialize;

use crate::templates::format_time;

const HOURS: i64 = 7 * 24;

/// The charted events: (audit event, label, line colour).
const SERIES: [(&str, &str, RGBColor); 3] = [
    ("sign_in", "sign-ins", RGBColor(26, 127, 55)),
    ("sign_in_refused", "refused sign-ins", RGBColor(180, 35, 24)),
    ("access_denied", "access denied", RGBColor(15, 108, 189)),
];

/// Counts per series (in `SERIES` order) per hour, oldest hour first; the last is `now`'s hour.
/// One bucketing for the chart and the table, so both show the same numbers.
fn buckets(rows: &[(String, i64, i64)], now: i64) -> [Vec<i64>; 3] {
    let current_hour = now / 3600 * 3600;
    let mut counts = [
        vec![0i64; HOURS as usize],
        vec![0i64; HOURS as usize],
        vec![0i64; HOURS as usize],
    ];
    for (event, hour, count) in rows {
        let ago = (current_hour - hour) / 3600;
        if !(0..HOURS).contains(&ago) {
            continue;
        }
        if let Some(i) = SERIES.iter().position(|s| s.0 == event) {
            counts[i][(HOURS - 1 - ago) as usize] += count;
        }
    }
    counts
}

/// One row of the chart's table: an hour with at least one event.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct HourRow {
    pub hour: String,
    pub sign_in: i64,
    pub sign_in_refused: i64,
    pub access_denied: i64,
}

/// The chart's numbers for the page: hours with events (newest first) and 7-day totals.
#[derive(Debug, Serialize)]
pub struct ChartTable {
    pub rows: Vec<HourRow>,
    pub totals: HourRow,
    /// A one-sentence summary, the SVG's accessible name.
    pub summary: String,
}

/// The same numbers as `hourly_svg`, as table rows; empty hours are left out.
pub fn hourly_table(rows: &[(String, i64, i64)], now: i64) -> ChartTable {
    let counts = buckets(rows, now);
    let current_hour = now / 3600 * 3600;
    let rows: Vec<HourRow> = (0..HOURS as usize)
        .rev()
        .filter(|&i| counts.iter().any(|c| c[i] > 0))
        .map(|i| HourRow {
            hour: format_time(current_hour - (HOURS - 1 - i as i64) * 3600),
            sign_in: counts[0][i],
            sign_in_refused: counts[1][i],
            access_denied: counts[2][i],
        })
        .collect();
    let total = |s: usize| counts[s].iter().sum::<i64>();
    let totals = HourRow {
        hour: "last 7 days".to_owned(),
        sign_in: total(0),
        sign_in_refused: total(1),
        access_denied: total(2),
    };
    let summary = format!(
        "Line chart of the last 7 days per hour: {} sign-ins, {} refused sign-ins, {} access denied. \
         The table below has the numbers per hour.",
        totals.sign_in, totals.sign_in_refused, totals.access_denied
    );
    ChartTable {
        rows,
        totals,
        summary,
    }
}

/// Renders `(event, hour_start, count)` rows as an SVG line chart ending at `now`, with
/// `role="img"` and `label` as its accessible name (its text is only tick labels).
pub fn hourly_svg(rows: &[(String, i64, i64)], now: i64, label: &str) -> String {
    let counts = buckets(rows, now);
    let max = counts
        .iter()
        .flat_map(|c| c.iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);

    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (880, 300)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Per hour, last 7 days", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(52)
            .build_cartesian_2d(-(HOURS - 1)..0i64, 0..(max + max / 5 + 1))?;
        chart
            .configure_mesh()
            .x_desc("hours ago")
            .y_desc("events")
            .x_label_formatter(&|h| format!("{}", -h))
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 16))
            .disable_x_mesh()
            .draw()?;
        for ((_, label, color), counts) in SERIES.iter().zip(&counts) {
            let color = *color;
            chart
                .draw_series(LineSeries::new(
                    counts
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (i as i64 - (HOURS - 1), *c)),
                    color.stroke_width(2),
                ))?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => {
            let label = label
                .replace('&', "&amp;")
                .replace('"', "&quot;")
                .replace('<', "&lt;");
            svg.replacen(
                "<svg ",
                &format!("<svg role=\"img\" aria-label=\"{label}\" "),
                1,
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "chart rendering failed");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_the_charts_numbers_newest_hour_first() {
        let now = 1_800_000_000;
        let hour = now / 3600 * 3600;
        let rows = vec![
            ("sign_in".to_owned(), hour, 2),
            ("sign_in".to_owned(), hour - 3 * 3600, 1),
            ("access_denied".to_owned(), hour - 3 * 3600, 4),
            ("sign_in_refused".to_owned(), hour - 8 * 86_400, 9), // older than 7 days
            ("note_created".to_owned(), hour, 5),                 // not charted
        ];
        let table = hourly_table(&rows, now);
        assert_eq!(table.rows.len(), 2);
        assert_eq!(table.rows[0].hour, format_time(hour));
        assert_eq!((table.rows[0].sign_in, table.rows[0].access_denied), (2, 0));
        assert_eq!(table.rows[1].hour, format_time(hour - 3 * 3600));
        assert_eq!((table.rows[1].sign_in, table.rows[1].access_denied), (1, 4));
        assert_eq!(
            (
                table.totals.sign_in,
                table.totals.sign_in_refused,
                table.totals.access_denied
            ),
            (3, 0, 4)
        );
        let svg = hourly_svg(&rows, now, &table.summary);
        assert!(svg.starts_with("<svg role=\"img\" aria-label=\"Line chart"));
        assert!(table.summary.contains("3 sign-ins"));
    }
}

/// How long a rendered chart is reused when this process wrote nothing: bounds how stale the
/// chart can be for audit rows written by other instances.
const CACHE_FOR: Duration = Duration::from_secs(60);

/// The rendered chart (SVG and table), reused until this process writes an audit row, the hour
/// turns, or a minute passes: reading and drawing 7 x 24 x 3 buckets on every admin view was
/// most of the page's cost (one SQLite row hop per bucket).
#[derive(Default)]
pub struct ChartCache(Mutex<Option<Arc<Rendered>>>);

/// One rendering of the chart.
pub struct Rendered {
    /// The `<svg>` element.
    pub svg: String,
    /// The same numbers as a table.
    pub table: ChartTable,
    /// This rendering's number, unique in the process (the admin page keys its table by it).
    pub serial: u64,
    writes: u64,
    hour: i64,
    at: Instant,
}

/// Renderings made so far, for [`Rendered::serial`].
static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl ChartCache {
    /// The chart for `now`, rendered again only when stale.
    pub async fn get(
        &self,
        pool: &crate::db::Pool,
        now: i64,
    ) -> Result<Arc<Rendered>, sqlx::Error> {
        let writes = crate::db::audit::writes();
        let fresh =
            |r: &Rendered| r.writes == writes && r.hour == now / 3600 && r.at.elapsed() < CACHE_FOR;
        if let Ok(slot) = self.0.lock()
            && let Some(r) = slot.as_ref()
            && fresh(r)
        {
            return Ok(Arc::clone(r));
        }
        let rows = crate::db::audit::hourly(pool, now - HOURS * 3600).await?;
        let table = hourly_table(&rows, now);
        let svg = hourly_svg(&rows, now, &table.summary);
        let rendered = Arc::new(Rendered {
            svg,
            table,
            serial: SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            writes,
            hour: now / 3600,
            at: Instant::now(),
        });
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(Arc::clone(&rendered));
        }
        Ok(rendered)
    }
}
