//! Query answers as a table.

use std::fmt;

use crate::value::{Interner, Value};

/// The answers of a query: one column per distinct variable of the goal (in order of first occurrence),
/// one row per answer, sorted (integers numerically, then symbols by name) and deduplicated. A goal with
/// no variables has no columns and one row when it holds, none when it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// The rows rendered (`alice`, `42`), for display without the engine.
    cells: Vec<Vec<String>>,
}

impl Answers {
    pub(crate) fn new(columns: Vec<String>, rows: Vec<Vec<Value>>, interner: &Interner) -> Self {
        let cells = rows
            .iter()
            .map(|r| r.iter().map(|&v| interner.render(v)).collect())
            .collect();
        Answers {
            columns,
            rows,
            cells,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// For a ground goal: whether it holds.
    pub fn holds(&self) -> bool {
        !self.rows.is_empty()
    }

    /// The rows rendered as text.
    pub fn text_rows(&self) -> &[Vec<String>] {
        &self.cells
    }
}

impl fmt::Display for Answers {
    /// An aligned table with the variable names as headers, or `true` / `false` for a ground goal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.columns.is_empty() {
            return writeln!(f, "{}", if self.holds() { "true" } else { "false" });
        }
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|c| {
                self.cells
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([self.columns[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, &w)| format!("{c:<w$}"))
                .collect();
            writeln!(f, "{}", parts.join(" | ").trim_end())
        };
        line(f, &self.columns)?;
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        writeln!(f, "{}", rule.join("-+-"))?;
        for row in &self.cells {
            line(f, row)?;
        }
        writeln!(
            f,
            "({} answer{})",
            self.rows.len(),
            if self.rows.len() == 1 { "" } else { "s" }
        )
    }
}
