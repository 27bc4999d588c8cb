//! Statistics over repetitions, the markdown table and the JSON file.

use std::collections::BTreeMap;

use serde::Serialize;

/// The columns of the table, in order. `bare` is the limit, not a peer.
pub const COLUMNS: [&str; 6] = ["noex", "ractor", "kameo", "actix", "erlang", "bare"];

/// The peers noex is compared with (the "best peer" is the best of these).
pub const PEERS: [&str; 4] = ["ractor", "kameo", "actix", "erlang"];

/// One library's result for one figure.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Median, min and max of the repetitions, and each repetition's value.
    Measured {
        median: f64,
        min: f64,
        max: f64,
        samples: Vec<f64>,
    },
    /// Not run or failed, and why.
    Skipped { reason: String },
}

impl Outcome {
    pub fn from_samples(samples: Vec<f64>) -> Outcome {
        if samples.is_empty() {
            return Outcome::skipped("no repetition finished");
        }
        let mut sorted = samples.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        // The median of an even count is the mean of the two middle values.
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Outcome::Measured {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            samples,
        }
    }

    pub fn skipped(reason: impl Into<String>) -> Outcome {
        Outcome::Skipped {
            reason: reason.into(),
        }
    }

    pub fn median(&self) -> Option<f64> {
        match self {
            Outcome::Measured { median, .. } => Some(*median),
            Outcome::Skipped { .. } => None,
        }
    }
}

/// One row of the table: one figure of one workload, for every library.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// The workload's command-line name (`call`, `cast`, ...).
    pub workload: String,
    /// What the row shows, with its unit.
    pub label: String,
    pub unit: String,
    /// `true` for rates (more is better), `false` for times and sizes.
    pub higher_is_better: bool,
    /// Keyed by [`COLUMNS`] names.
    pub results: BTreeMap<String, Outcome>,
}

impl Figure {
    pub fn new(workload: &str, label: &str, unit: &str, higher_is_better: bool) -> Figure {
        Figure {
            workload: workload.to_owned(),
            label: label.to_owned(),
            unit: unit.to_owned(),
            higher_is_better,
            results: BTreeMap::new(),
        }
    }

    pub fn set(&mut self, library: &str, outcome: Outcome) {
        self.results.insert(library.to_owned(), outcome);
    }

    fn better(&self, a: f64, b: f64) -> bool {
        if self.higher_is_better {
            a > b
        } else {
            a < b
        }
    }

    /// The best peer's name and median.
    pub fn best_peer(&self) -> Option<(&'static str, f64)> {
        let mut best: Option<(&'static str, f64)> = None;
        for peer in PEERS {
            if let Some(value) = self.results.get(peer).and_then(Outcome::median) {
                if best.is_none_or(|(_, b)| self.better(value, b)) {
                    best = Some((peer, value));
                }
            }
        }
        best
    }

    fn noex(&self) -> Option<f64> {
        self.results.get("noex").and_then(Outcome::median)
    }

    /// noex's median divided by the best peer's.
    pub fn ratio_to_best(&self) -> Option<f64> {
        Some(self.noex()? / self.best_peer()?.1)
    }

    /// noex's median divided by the bare limit's.
    pub fn ratio_to_bare(&self) -> Option<f64> {
        Some(self.noex()? / self.results.get("bare").and_then(Outcome::median)?)
    }
}

/// Everything one run measured, as written to `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub command: String,
    pub quick: bool,
    pub machine: BTreeMap<String, String>,
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
}

/// A number with 3 significant digits and thousands separators.
pub fn fmt_num(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    let abs = value.abs();
    let decimals = if abs >= 100.0 {
        0
    } else if abs >= 10.0 {
        1
    } else if abs >= 1.0 {
        2
    } else {
        3
    };
    let rounded = if abs >= 1000.0 {
        // Three significant digits.
        let magnitude = 10f64.powi(abs.log10().floor() as i32 - 2);
        (value / magnitude).round() * magnitude
    } else {
        value
    };
    let text = format!("{rounded:.decimals$}");
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_owned(), Some(f.to_owned())),
        None => (text.clone(), None),
    };
    let (sign, digits) = match int.strip_prefix('-') {
        Some(d) => ("-", d.to_owned()),
        None => ("", int),
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn cell(outcome: Option<&Outcome>) -> String {
    match outcome {
        Some(Outcome::Measured {
            median, min, max, ..
        }) => format!("{} ({}–{})", fmt_num(*median), fmt_num(*min), fmt_num(*max)),
        Some(Outcome::Skipped { .. }) => "n/a¹".to_owned(),
        None => "—".to_owned(),
    }
}

fn ratio(value: Option<f64>) -> String {
    value.map_or("—".to_owned(), |r| format!("{r:.2}×"))
}

/// The markdown table: median (min–max) per library, and noex's ratios.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(
        "| workload | noex | ractor | kameo | actix | Erlang/OTP | bare limit | noex ÷ best peer | noex ÷ bare |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for figure in &report.figures {
        let direction = if figure.higher_is_better {
            "↑"
        } else {
            "↓"
        };
        let mut row = format!("| {} ({} {direction}) ", figure.label, figure.unit);
        for column in COLUMNS {
            row.push_str(&format!("| {} ", cell(figure.results.get(column))));
        }
        let best = match figure.best_peer() {
            Some((peer, _)) if figure.noex().is_some() => {
                format!("{} ({peer})", ratio(figure.ratio_to_best()))
            }
            _ => "—".to_owned(),
        };
        row.push_str(&format!("| {best} | {} |\n", ratio(figure.ratio_to_bare())));
        out.push_str(&row);
    }
    // Each library's reasons, once each.
    let mut skipped = std::collections::BTreeSet::new();
    for figure in &report.figures {
        for (lib, outcome) in &figure.results {
            if let Outcome::Skipped { reason } = outcome {
                skipped.insert(format!("{lib}: {reason}"));
            }
        }
    }
    if !skipped.is_empty() {
        out.push_str("\n¹ not measured:\n");
        for line in skipped {
            out.push_str(&format!("- {line}\n"));
        }
    }
    if !report.notes.is_empty() {
        out.push('\n');
        for note in &report.notes {
            out.push_str(&format!("- {note}\n"));
        }
    }
    out
}
