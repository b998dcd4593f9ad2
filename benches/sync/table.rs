//! The printed table: each figure, its target, what was measured, and whether it met it.

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is measured.
    pub figure: String,
    /// The target of issue #7.
    pub target: String,
    /// The measured value, formatted.
    pub measured: String,
    /// Whether it met the target (`None`: nothing to meet, e.g. a ratio stated).
    pub met: Option<bool>,
}

impl Row {
    /// A row.
    pub fn new(
        figure: impl Into<String>,
        target: impl Into<String>,
        measured: impl Into<String>,
        met: Option<bool>,
    ) -> Self {
        Self {
            figure: figure.into(),
            target: target.into(),
            measured: measured.into(),
            met,
        }
    }
}

/// The rows as a Markdown table.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from("| figure | target | measured | met |\n|---|---|---|---|\n");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.figure, r.target, r.measured, met
        ));
    }
    out
}

/// Value at quantile `q` (0..=1) of `values` (sorted here), nearest rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}
