//! One test over every rule id of the catalogue (rules/*.toml). Each id needs
//!
//! - (a) a check that emits it: the id in src/ as a string literal (`"BAT-001"`) or a
//!   typed constant (`BAT_001`), outside comments and outside lists of ids (a pass's
//!   `ids`, the report's tables of rules), which name rules without emitting them;
//! - (b) a test that triggers it: a test under tests/ naming the id as an argument of a
//!   positive assertion, [`POSITIVE`] (each goes through `util::assert_fires`);
//! - (c) a rationale a reader can use: at least [`MIN_RATIONALE`] characters, not a
//!   placeholder ([`PLACEHOLDERS`]), not the title again, and no maintainer's note
//!   (`docs::internal_note`: "§", "annotate", "downgrade", ...).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vhdx_check::rules::catalogue::catalogue;

/// The helpers that assert a rule fires. A call naming an id (as a literal argument)
/// counts for (b); `!helper(..)` does not. Each is defined under tests/ and calls
/// `assert_fires` or another of these (checked below), so none can assert less.
pub const POSITIVE: &[&str] = &[
    "assert_fires",
    "assert_fires_json",
    "requirement_fails",
    "fires",
    "fires_at",
    "value_fires",
    "chain_fires",
    "one",
    "message",
    "assert_all",
    "all_at",
];

/// Rationales that are a placeholder rather than a reason, compared whole (lower case,
/// without trailing punctuation).
const PLACEHOLDERS: &[&str] = &[
    "core",
    "summary",
    "reserved",
    "statistics",
    "info",
    "see spec",
    "see the specification",
    "tbd",
    "todo",
    "n/a",
    "none",
    "placeholder",
];

/// The shortest rationale that can say why a rule matters.
const MIN_RATIONALE: usize = 40;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `.rs` files below `dir`, sorted.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `src` without its comments; string and character literals are kept whole.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if let Some(body) = rest.strip_prefix("/*") {
            i += body.find("*/").map_or(rest.len(), |e| e + 4);
            out.push(' ');
        } else if let Some(n) = literal_len(src, i) {
            out.push_str(&src[i..i + n]);
            i += n;
        } else {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of the string, raw string or character literal starting at `i`, if one does.
fn literal_len(src: &str, i: usize) -> Option<usize> {
    let b = src.as_bytes();
    let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
    match b[i] {
        b'"' => {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            Some((j + 1).min(b.len()) - i)
        }
        b'r' if !ident_before => {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                return None;
            }
            let close = format!("\"{}", "#".repeat(hashes));
            let body = i + 2 + hashes;
            Some(
                src[body..]
                    .find(&close)
                    .map_or(src.len(), |e| body + e + close.len())
                    - i,
            )
        }
        // A character literal ('x', '\n', '\u{..}'), not a lifetime ('a).
        b'\'' => {
            let rest = &src[i + 1..];
            let n = if rest.starts_with("\\u{") {
                rest.find('}')? + 1
            } else if rest.starts_with('\\') {
                2
            } else {
                rest.chars().next()?.len_utf8()
            };
            (rest.as_bytes().get(n) == Some(&b'\'')).then_some(n + 2)
        }
        _ => None,
    }
}

/// Whether `s` is a rule id written as a literal (`"BAT-001"`) or a typed constant
/// (`BAT_001`, `id::BAT_001`).
fn id_token(s: &str) -> bool {
    let s = s.trim();
    let lit = s.strip_prefix('"').and_then(|s| s.strip_suffix('"'));
    let (name, sep) = match lit {
        Some(l) => (l, '-'),
        None => (s.rsplit("::").next().unwrap_or(s), '_'),
    };
    name.split_once(sep).is_some_and(|(fam, n)| {
        !fam.is_empty()
            && fam.bytes().all(|c| c.is_ascii_uppercase())
            && n.len() == 3
            && n.bytes().all(|c| c.is_ascii_digit())
    })
}

/// `code` with every bracketed list made only of ids blanked: a list names rules (a
/// pass's `ids`, a table of rule kinds), it does not emit them.
fn without_id_lists(code: &str) -> String {
    let mut out = code.to_string();
    let mut from = 0;
    while let Some(open) = out[from..].find('[').map(|k| from + k) {
        let Some(close) = out[open..].find(']').map(|k| open + k) else {
            break;
        };
        let inner = &out[open + 1..close];
        let items: Vec<&str> = inner.split(',').filter(|s| !s.trim().is_empty()).collect();
        if !items.is_empty() && items.iter().all(|s| id_token(s)) {
            out.replace_range(open + 1..close, &" ".repeat(close - open - 1));
        }
        from = open + 1;
    }
    out
}

/// Whether `code` names `id` outside a list: `"BAT-001"`, or `BAT_001` as a word that is
/// not the name a constant is defined under.
fn names(code: &str, id: &str) -> bool {
    if code.contains(&format!("\"{id}\"")) {
        return true;
    }
    let typed = id.replace('-', "_");
    code.match_indices(&typed).any(|(k, _)| {
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let before = code[..k].chars().next_back();
        let after = code[k + typed.len()..].chars().next();
        !word(before) && !word(after) && !code[..k].trim_end().ends_with("const")
    })
}

/// The end (exclusive) of the parenthesised argument list opening at `open`.
fn close_paren(code: &str, open: usize) -> usize {
    let mut depth = 0;
    let mut i = open;
    while i < code.len() {
        if let Some(n) = literal_len(code, i) {
            i += n;
            continue;
        }
        match code.as_bytes()[i] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    code.len()
}

/// The calls `name(..)` in `code` (not `.name(`, `!name(`, `fn name(`): their argument text.
fn calls<'c>(code: &'c str, name: &str) -> Vec<&'c str> {
    let mut out = Vec::new();
    for (k, _) in code.match_indices(name) {
        let before = code[..k].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '!')
            || code[..k].trim_end().ends_with("fn")
        {
            continue;
        }
        let after = &code[k + name.len()..];
        let open = k + name.len() + (after.len() - after.trim_start().len());
        if code[open..].starts_with('(') {
            out.push(&code[open..close_paren(code, open)]);
        }
    }
    out
}

/// The bodies of the functions named `name` defined in `code`.
fn bodies<'c>(code: &'c str, name: &str) -> Vec<&'c str> {
    let mut out = Vec::new();
    for (k, _) in code.match_indices(&format!("fn {name}")) {
        let next = code[k + 3 + name.len()..].chars().next();
        if !matches!(next, Some('(' | '<')) {
            continue;
        }
        let Some(open) = code[k..].find('{').map(|o| k + o) else {
            continue;
        };
        let mut depth = 0;
        for (j, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        out.push(&code[open..open + j + 1]);
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// String literals of rule ids in `text`.
fn id_literals(text: &str) -> Vec<&str> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| id_token(&format!("\"{s}\"")))
        .collect()
}

/// Why a rationale is not one a reader can use, if it is not.
fn weak_rationale(title: &str, rationale: &str) -> Option<String> {
    let text = rationale.trim();
    let bare = text.trim_end_matches(['.', ':', ';', '!']).to_lowercase();
    if PLACEHOLDERS.contains(&bare.as_str()) {
        return Some(format!("a placeholder ({text:?})"));
    }
    if text.chars().count() < MIN_RATIONALE {
        return Some(format!("under {MIN_RATIONALE} characters ({text:?})"));
    }
    if text.eq_ignore_ascii_case(title.trim()) {
        return Some("repeats the title".into());
    }
    if let Some(note) = crate::docs::internal_note(text) {
        return Some(format!("a maintainer's note ({note:?}) in {text:?}"));
    }
    None
}

#[test]
fn every_rule_is_emitted_triggered_and_explained() {
    let src: Vec<(PathBuf, String)> = sources(&root().join("src"))
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        // A generated table lists every id; it emits none.
        .filter(|(_, text)| !text.lines().take(5).any(|l| l.contains("@generated")))
        .map(|(p, text)| (p, without_id_lists(&code_only(&text))))
        .collect();
    let this = root().join("tests/catalogue.rs");
    let tests: Vec<(PathBuf, String)> = sources(&root().join("tests"))
        .into_iter()
        .filter(|p| *p != this)
        .map(|p| {
            let text = code_only(&std::fs::read_to_string(&p).unwrap());
            (p, text)
        })
        .collect();

    // (b): the ids each positive helper is called with, and which file calls it.
    let mut triggered: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (path, code) in &tests {
        for helper in POSITIVE {
            for args in calls(code, helper) {
                for id in id_literals(args) {
                    let file = path.strip_prefix(root()).unwrap_or(path);
                    triggered
                        .entry(id)
                        .or_default()
                        .push(file.display().to_string());
                }
            }
        }
    }

    let mut problems = Vec::new();
    // Each positive helper asserts: it is defined, and goes through assert_fires.
    for helper in POSITIVE {
        let defs: Vec<&str> = tests.iter().flat_map(|(_, c)| bodies(c, helper)).collect();
        if defs.is_empty() {
            problems.push(format!(
                "positive helper {helper} is defined nowhere under tests/"
            ));
        }
        for body in defs {
            let asserts = if helper.starts_with("assert_fires") {
                body.contains("assert!(")
            } else {
                POSITIVE
                    .iter()
                    .any(|h| h != helper && !calls(body, h).is_empty())
            };
            if !asserts {
                problems.push(format!(
                    "positive helper {helper} does not call assert_fires (or another of {POSITIVE:?})"
                ));
            }
        }
    }
    let mut count = 0;
    for r in catalogue().rules() {
        count += 1;
        if !src.iter().any(|(_, code)| names(code, r.id)) {
            problems.push(format!("{}: no check in src/ emits it", r.id));
        }
        if !triggered.contains_key(r.id) {
            problems.push(format!(
                "{}: no test asserts it fires (call one of {POSITIVE:?} with \"{}\")",
                r.id, r.id
            ));
        }
        if let Some(why) = weak_rationale(r.title, r.rationale) {
            problems.push(format!("{}: the rationale is {why}", r.id));
        }
    }
    assert!(count > 0, "the catalogue is empty");
    assert!(
        problems.is_empty(),
        "{} problems over {count} rules:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_scanners_see_what_they_look_for() {
    assert!(id_token("\"BAT-001\"") && id_token("BAT_001") && id_token(" id::LOG_070 "));
    assert!(!id_token("\"BAT-01\"") && !id_token("max_100") && !id_token("x"));
    let code = code_only(
        "s.emit(\"XYZ-001\", at); // \"XYZ-002\"\nids: &[\"XYZ-003\", id::XYZ_004],\n/* XYZ_005 */ let c = '\"'; emit(id::XYZ_006, at);\npub const XYZ_007: Id = 7;",
    );
    let code = without_id_lists(&code);
    assert!(names(&code, "XYZ-001"), "{code}");
    for id in ["XYZ-002", "XYZ-003", "XYZ-004", "XYZ-005", "XYZ-007"] {
        assert!(!names(&code, id), "{id} in {code}");
    }
    assert!(names(&code, "XYZ-006"), "{code}");
    let test = code_only(
        "fires(&b, \"XYZ-001\", |i| i.patch(0, b\")\"));\nassert!(!one(&r, \"XYZ-002\").x);\nr.fires(\"XYZ-003\");\nfn fires(b: &B, id: &str) {}",
    );
    let found: Vec<&str> = calls(&test, "fires")
        .into_iter()
        .chain(calls(&test, "one"))
        .flat_map(id_literals)
        .collect();
    assert_eq!(found, ["XYZ-001"]);
    assert_eq!(
        bodies(
            "fn one<'a>(x: &'a X) -> u8 { if a { 1 } else { 2 } }",
            "one"
        )
        .len(),
        1
    );
    assert!(weak_rationale("T", "core").is_some());
    assert!(weak_rationale("T", "Summary.").is_some());
    assert!(weak_rationale("T", "Too short to say why.").is_some());
    assert!(
        weak_rationale(
            "T",
            "Downgrade to info when the log is empty, as section §4 says."
        )
        .is_some()
    );
    assert!(
        weak_rationale(
            "T",
            "Bits 3 to 19 are reserved and must be zero; a strict reader may refuse the entry."
        )
        .is_none()
    );
}
