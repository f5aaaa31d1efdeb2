//! The admin page's chart: sign-ins, refusals and denials per hour over 7 days, as SVG.

use plotters::prelude::*;

const HOURS: i64 = 7 * 24;

/// Renders `(event, hour_start, count)` rows as an SVG line chart ending at `now`.
pub fn hourly_svg(rows: &[(String, i64, i64)], now: i64) -> String {
    let current_hour = now / 3600 * 3600;
    let mut series = [
        (
            "sign_in",
            "sign-ins",
            RGBColor(26, 127, 55),
            vec![0i64; HOURS as usize],
        ),
        (
            "sign_in_refused",
            "refused sign-ins",
            RGBColor(180, 35, 24),
            vec![0i64; HOURS as usize],
        ),
        (
            "access_denied",
            "access denied",
            RGBColor(15, 108, 189),
            vec![0i64; HOURS as usize],
        ),
    ];
    for (event, hour, count) in rows {
        let ago = (current_hour - hour) / 3600;
        if !(0..HOURS).contains(&ago) {
            continue;
        }
        if let Some(s) = series.iter_mut().find(|s| s.0 == event) {
            s.3[(HOURS - 1 - ago) as usize] += count;
        }
    }
    let max = series
        .iter()
        .flat_map(|s| s.3.iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);

    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (880, 260)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Per hour, last 7 days", ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(40)
            .build_cartesian_2d(-(HOURS - 1)..0i64, 0..(max + max / 5 + 1))?;
        chart
            .configure_mesh()
            .x_desc("hours ago")
            .x_label_formatter(&|h| format!("{}", -h))
            .disable_x_mesh()
            .draw()?;
        for (_, label, color, counts) in &series {
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
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => svg,
        Err(e) => {
            tracing::warn!(error = %e, "chart rendering failed");
            String::new()
        }
    }
}
