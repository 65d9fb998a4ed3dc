//! `tl help`: the builtin registry printed for people.

use std::process::ExitCode;

use tl_interp::builtins::{self, Builtin};

/// Width that docs are wrapped to.
const WRAP: usize = 88;

pub fn run(name: Option<&str>) -> ExitCode {
    match name {
        None => {
            print!("{}", overview());
            ExitCode::SUCCESS
        }
        Some(name) => match builtins::lookup(name) {
            Some(b) => {
                print!("{}", describe(b));
                ExitCode::SUCCESS
            }
            None => {
                eprint!("{}", unknown(name));
                ExitCode::from(1)
            }
        },
    }
}

/// Every builtin's signature, grouped by category.
pub fn overview() -> String {
    let mut out = String::from("Builtins of TensorLogic (`tl help NAME` shows one in full):\n");
    let mut category = "";
    for b in builtins::all() {
        if b.category != category {
            category = b.category;
            out.push_str(&format!("\n{category}:\n"));
        }
        out.push_str(&format!("  {}\n", b.signature));
    }
    out
}

/// One builtin: signature, category and its doc wrapped to [`WRAP`] columns.
pub fn describe(b: &Builtin) -> String {
    let mut out = format!("{}\n  ({})\n\n", b.signature, b.category);
    for paragraph in b.doc.split("\n\n") {
        out.push_str(&wrap(paragraph, WRAP));
        out.push('\n');
    }
    out
}

/// The error for a name that is no builtin, with the closest names suggested.
pub fn unknown(name: &str) -> String {
    let mut out = format!("error: no builtin named `{name}`\n");
    let close = close_matches(name, builtins::all().iter().map(|b| b.name));
    if !close.is_empty() {
        let list: Vec<String> = close.iter().map(|n| format!("`{n}`")).collect();
        out.push_str(&format!("  = help: did you mean {}?\n", list.join(", ")));
    }
    out.push_str("  = note: `tl help` lists every builtin\n");
    out
}

/// Names within a small edit distance of `name` (or containing it), closest first, at most 5.
pub fn close_matches<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = candidates
        .filter_map(|c| {
            let d = edit_distance(name, c);
            if d <= limit {
                Some((d, c))
            } else if name.len() >= 3 && c.contains(name) {
                Some((limit + 1, c))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, c)| c).collect()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Greedy word wrap; keeps the text's own line breaks.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut current = String::new();
        for word in line.split_whitespace() {
            if !current.is_empty() && current.len() + 1 + word.len() > width {
                out.push_str(&current);
                out.push('\n');
                current.clear();
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
        out.push_str(&current);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("softmax", "softmax"), 0);
        assert_eq!(edit_distance("sofmax", "softmax"), 1);
        assert_eq!(edit_distance("matmull", "matmul"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn close_matches_prefers_the_nearest() {
        let names = ["softmax", "log_softmax", "sum", "sin", "sqrt"];
        assert_eq!(
            close_matches("sofmax", names.iter().copied()),
            vec!["softmax"]
        );
        assert_eq!(
            close_matches("softmax", names.iter().copied()),
            vec!["softmax", "log_softmax"]
        );
        assert!(close_matches("zzzzzz", names.iter().copied()).is_empty());
    }

    #[test]
    fn wrap_breaks_long_lines_at_words() {
        let text = "aaa bbb ccc ddd";
        assert_eq!(wrap(text, 7), "aaa bbb\nccc ddd\n");
        assert_eq!(wrap("short", 80), "short\n");
    }
}
