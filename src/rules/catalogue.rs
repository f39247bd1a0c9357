//! The rule catalogue as data: rules/*.toml, turned into a static table by build.rs (the
//! files stay the single source of truth; the list of family files is in build.rs).
//! Looking a rule up costs a binary search, and nothing is parsed at start-up.

use crate::findings::Severity;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub id: &'static str,
    pub applies_to: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub spec: &'static str,
    /// What the rule means for the image and its readers, and what follows.
    pub rationale: &'static str,
    /// What to do about a finding; when a rule has none, the docs give its severity's
    /// general advice ([`RuleInfo::advice`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    /// Set while a rule has no check yet: why it waits (e.g. it needs the log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred: Option<&'static str>,
}

// `RULES` (sorted by id) and `FILES`, generated from rules/*.toml.
include!(concat!(env!("OUT_DIR"), "/catalogue.rs"));

/// Where the rule pages are published: `VHDX_CHECK_DOCS_URL` at build time, else the
/// crate's source as docs.rs serves it (docs/ is packaged with the crate; SARIF's helpUri
/// must be an absolute URI, and crates.io is the only home the package metadata names).
pub const DOCS_URL: &str = match option_env!("VHDX_CHECK_DOCS_URL") {
    Some(u) => u,
    None => concat!(
        "https://docs.rs/crate/vhdx-check/",
        env!("CARGO_PKG_VERSION"),
        "/source/docs/rules"
    ),
};

/// The rule pages' directory in the source tree.
pub const DOCS_DIR: &str = "docs/rules";

impl RuleInfo {
    /// The rule's page in the source tree (docs/rules/ID.md).
    pub fn doc_path(&self) -> String {
        format!("{DOCS_DIR}/{}.md", self.id)
    }

    /// The rule's page as an absolute URL under [`DOCS_URL`].
    pub fn doc_url(&self) -> String {
        format!("{}/{}.md", DOCS_URL.trim_end_matches('/'), self.id)
    }

    /// What to do: the rule's own action, else its severity's general advice.
    pub fn advice(&self) -> &'static str {
        self.action.unwrap_or(match self.severity {
            Severity::Error => {
                "The image does not conform at this point. Work on a copy, look at the bytes at \
                 the reported offset, and do not let a tool repair or convert the image before it \
                 has been examined: readers may refuse it or read different data."
            }
            Severity::Warning => {
                "Readers still open the image, but review the reported bytes: they are unusual \
                 for a conforming writer and may hold data, damage or a writer's quirk."
            }
            Severity::Info => {
                "Nothing needs fixing. Keep the finding with the case notes; it records what \
                 the image holds."
            }
        })
    }
}

/// The page of one rule (docs/rules/ID.md), generated from rules/*.toml.
pub fn rule_page(r: &RuleInfo) -> String {
    let mut s = format!(
        "<!-- Generated from rules/*.toml by `BLESS=1 cargo test --test tests docs::`; do not edit. -->\n\
         # {}: {}\n\n\
         | | |\n|---|---|\n| Severity | {} |\n| Applies to | {} |\n| Specification | {} |\n",
        r.id,
        r.title,
        r.severity.as_str(),
        r.applies_to,
        r.spec
    );
    if let Some(d) = r.deferred {
        s.push_str(&format!("| Status | not yet checked: {d} |\n"));
    }
    s.push_str(&format!(
        "\n## What it means\n\n{}\n\n## What to do\n\n{}\n\n\
         Run `vhdx-check explain {}` for this text in a terminal; [all rules](README.md).\n",
        r.rationale,
        r.advice(),
        r.id
    ));
    s
}

/// The index of the rule pages (docs/rules/README.md).
pub fn rules_index() -> String {
    let mut s = String::from(
        "<!-- Generated from rules/*.toml by `BLESS=1 cargo test --test tests docs::`; do not edit. -->\n\
         # vhdx-check rules\n\n\
         Every rule the checker reports, by id. `vhdx-check explain ID` prints a rule's page; \
         `vhdx-check rules` lists them.\n\n| Id | Severity | Title |\n|---|---|---|\n",
    );
    for r in catalogue().rules() {
        s.push_str(&format!(
            "| [{}]({}.md) | {} | {} |\n",
            r.id,
            r.id,
            r.severity.as_str(),
            r.title.replace('|', "\\|")
        ));
    }
    s
}

pub struct Catalogue {
    /// Sorted by id, ids unique (build.rs refuses duplicates).
    rules: &'static [RuleInfo],
}

impl Catalogue {
    pub fn get(&self, id: &str) -> Option<&'static RuleInfo> {
        let rules = self.rules;
        rules
            .binary_search_by(|r| r.id.cmp(id))
            .ok()
            .map(|i| &rules[i])
    }

    /// Every rule, in id order.
    pub fn rules(&self) -> std::slice::Iter<'static, RuleInfo> {
        self.rules.iter()
    }
}

/// The catalogue.
pub fn catalogue() -> &'static Catalogue {
    static CAT: Catalogue = Catalogue { rules: RULES };
    &CAT
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    /// A rule as written in rules/*.toml, read here at run time with `toml`.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Parsed {
        /// Internal remark, not in the table (cleared before comparing).
        #[serde(default)]
        note: Option<String>,
        id: String,
        applies_to: String,
        title: String,
        severity: Severity,
        spec: String,
        rationale: String,
        #[serde(default)]
        action: Option<String>,
        #[serde(default)]
        deferred: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Family {
        rule: Vec<Parsed>,
    }

    #[test]
    fn generated_table_matches_the_rule_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut parsed = BTreeMap::new();
        for name in FILES {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let fam: Family = toml::from_str(&text).unwrap();
            for mut r in fam.rule {
                r.note = None;
                assert!(parsed.insert(r.id.clone(), r).is_none(), "duplicate id");
            }
        }
        let table: Vec<Parsed> = catalogue()
            .rules()
            .map(|r| Parsed {
                id: r.id.into(),
                applies_to: r.applies_to.into(),
                title: r.title.into(),
                severity: r.severity,
                spec: r.spec.into(),
                rationale: r.rationale.into(),
                action: r.action.map(String::from),
                note: None,
                deferred: r.deferred.map(String::from),
            })
            .collect();
        assert_eq!(table, parsed.into_values().collect::<Vec<_>>());
    }

    #[test]
    fn lookup_by_id() {
        assert!(
            RULES.windows(2).all(|w| w[0].id < w[1].id),
            "sorted, unique"
        );
        for r in RULES {
            assert!(std::ptr::eq(catalogue().get(r.id).unwrap(), r));
        }
        assert!(catalogue().get("BAT-000").is_none());
        assert!(catalogue().get("").is_none());
        assert_eq!(catalogue().get("HDR-002").unwrap().id, "HDR-002");
    }
}
