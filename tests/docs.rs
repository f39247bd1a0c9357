//! The rule pages (docs/rules/) are generated from rules/*.toml and committed; these tests
//! fail when they are stale (`BLESS=1 cargo test --test tests docs::` rewrites them), and
//! hold the user-facing rule texts to plain language.

use std::collections::BTreeSet;
use std::path::Path;
use vhdx_check::rules::catalogue::{self, catalogue};

#[test]
fn rule_pages_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(catalogue::DOCS_DIR);
    let mut want: Vec<(String, String)> = catalogue()
        .rules()
        .map(|r| (format!("{}.md", r.id), catalogue::rule_page(r)))
        .collect();
    want.push(("README.md".into(), catalogue::rules_index()));
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (name, text) in &want {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    let mut stale = Vec::new();
    for (name, text) in &want {
        if std::fs::read_to_string(dir.join(name)).ok().as_deref() != Some(text.as_str()) {
            stale.push(name.clone());
        }
    }
    let wanted: BTreeSet<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
    let extra: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !wanted.contains(n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "docs/rules is stale (run `BLESS=1 cargo test --test tests docs::`): \
         out of date or missing {stale:?}, not a rule {extra:?}"
    );
}

/// Symbols that make a title a formula rather than a sentence.
const FORMULA: &[char] = &[
    '<', '>', '=', '·', '≤', '≥', '≠', '∧', '∨', '⌈', '⌉', '⌊', '⌋', '→', '⇒', '×', '∈', '∉', '∅',
    '%', '÷', '≈',
];

/// Remarks for maintainers that belong in a rule's `note`, not in what users read.
const INTERNAL: &[&str] = &[
    "§",
    "annotate",
    "downgrade",
    "(a)",
    "(b)",
    "todo",
    "fixme",
    "a4",
    "a6",
    "xxx",
    "tbd",
    "catalogue",
];

pub fn internal_note(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    INTERNAL.iter().copied().find(|p| {
        // "A4" etc. as a word, not inside e.g. "0xA4".
        if p.len() == 2 && p.starts_with('a') {
            lower.match_indices(p).any(|(i, _)| {
                let before = lower[..i].chars().next_back();
                let after = lower[i + p.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric())
                    && !after.is_some_and(|c| c.is_alphanumeric())
            })
        } else {
            lower.contains(p)
        }
    })
}

#[test]
fn rule_texts_are_plain_language() {
    let mut bad = Vec::new();
    for r in catalogue().rules() {
        if let Some(c) = r.title.chars().find(|c| FORMULA.contains(c)) {
            bad.push(format!(
                "{}: title has the formula symbol {c:?}: {}",
                r.id, r.title
            ));
        }
        let words = r.title.split_whitespace().count();
        if words < 3 {
            bad.push(format!("{}: title is not a phrase: {}", r.id, r.title));
        }
        // The rationale: catalogue::every_rule_is_emitted_triggered_and_explained.
        for text in [r.title, r.action.unwrap_or("")] {
            if let Some(p) = internal_note(text) {
                bad.push(format!("{}: internal note {p:?} in {text:?}", r.id));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} problems:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    assert_eq!(internal_note("value 5 — annotate"), Some("annotate"));
    assert_eq!(internal_note("see §4"), Some("§"));
    assert_eq!(internal_note("as A4 says"), Some("a4"));
    assert_eq!(internal_note("checked as in A4."), Some("a4"));
    assert_eq!(internal_note("the byte 0xA4 at offset 8"), None);
    assert_eq!(internal_note("readers open the image"), None);
}
