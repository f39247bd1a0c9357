//! The rule catalogue as data: rules/*.toml, embedded in the binary.

use super::finding::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// One family file of rules/ (name, TOML text).
const FILES: &[(&str, &str)] = &[
    (
        "identifier.toml",
        include_str!("../../rules/identifier.toml"),
    ),
    ("header.toml", include_str!("../../rules/header.toml")),
    ("region.toml", include_str!("../../rules/region.toml")),
    ("log.toml", include_str!("../../rules/log.toml")),
    ("metadata.toml", include_str!("../../rules/metadata.toml")),
    ("parent.toml", include_str!("../../rules/parent.toml")),
    ("bat.toml", include_str!("../../rules/bat.toml")),
    (
        "sector_bitmap.toml",
        include_str!("../../rules/sector_bitmap.toml"),
    ),
    ("layout.toml", include_str!("../../rules/layout.toml")),
    ("chain.toml", include_str!("../../rules/chain.toml")),
    ("policy.toml", include_str!("../../rules/policy.toml")),
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInfo {
    pub id: String,
    pub applies_to: String,
    pub title: String,
    pub severity: Severity,
    pub spec: String,
    pub rationale: String,
    /// Set while a rule has no check yet: why it waits (e.g. it needs the log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Family {
    rule: Vec<RuleInfo>,
}

pub struct Catalogue {
    by_id: BTreeMap<String, RuleInfo>,
}

impl Catalogue {
    fn load() -> Catalogue {
        let mut by_id = BTreeMap::new();
        for (name, text) in FILES {
            // The files are part of the build; a malformed one is a build defect that the
            // test suite catches on the first run.
            let fam: Family = toml::from_str(text)
                .unwrap_or_else(|e| panic!("rules/{name} is not a valid rule file: {e}"));
            for r in fam.rule {
                by_id.insert(r.id.clone(), r);
            }
        }
        Catalogue { by_id }
    }

    pub fn get(&self, id: &str) -> Option<&RuleInfo> {
        self.by_id.get(id)
    }

    pub fn rules(&self) -> impl Iterator<Item = &RuleInfo> {
        self.by_id.values()
    }
}

/// The catalogue, parsed once.
pub fn catalogue() -> &'static Catalogue {
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(Catalogue::load)
}
