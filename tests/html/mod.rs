//! The HTML evidence report (`check --format html`): parses without errors, holds every
//! finding, escapes what comes from the image, stays bounded for huge images, and renders
//! in headless Chromium without console errors or network requests.

mod bounds;
mod chromium;
mod pages;

use crate::builder::*;
use crate::cli::{Scratch, corpus, run};
use scraper::{Html, Selector};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use vhdx_check::check::{CheckOptions, check};
use vhdx_check::model::Model;
use vhdx_check::model::virtual_disk::{Extent, State};
use vhdx_check::report::html::{self, Parts, VirtualMap};
use vhdx_check::report::{Checked, Status};

/// A checked image as the renderer sees it.
fn checked<'a>(
    path: &'a str,
    report: &'a vhdx_check::check::ImageReport,
    rejected: bool,
    parts: &'a Parts,
) -> Checked<'a> {
    Checked {
        path: Path::new(path),
        outcome: Status::Report(report),
        rejected,
        parts: Some(parts),
    }
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn corpus_images() -> Vec<String> {
    let dir = corpus("damaged-multi.vhdx").parent().unwrap().to_path_buf();
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "vhdx"))
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    v.sort();
    assert!(v.len() >= 6, "corpus images missing: {v:?}");
    v
}

/// A 64 MiB dynamic parent and its differencing child, written to `dir`: (parent, child).
fn chain_in(dir: &Scratch) -> (String, String) {
    let parent = ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .seed(7)
        .write(0, b"parent data")
        .build();
    let linkage = guid_braced(&parent.layout.data_write_guid);
    let child = ImageBuilder::differencing(64 * MIB)
        .block_size(MIB as u32)
        .seed(1)
        .parent_locator(&[
            ("parent_linkage", linkage.as_str()),
            ("relative_path", r".\parent.vhdx"),
        ])
        .write_sectors(0, &[0xC1; 512])
        .build();
    let (pp, cp) = (dir.path("parent.vhdx"), dir.path("child.avhdx"));
    parent.write_to(Path::new(&pp)).unwrap();
    child.write_to(Path::new(&cp)).unwrap();
    (pp, cp)
}

/// An image whose strings carry markup, quotes and control characters: the creator, the
/// parent locator, hidden bytes in the header section, and its file name.
fn hostile_in(dir: &Scratch) -> String {
    let mut img = ImageBuilder::differencing(8 * MIB)
        .block_size(MIB as u32)
        .creator("<script>alert('creator')</script>\"\u{1}")
        .parent_locator(&[
            ("parent_linkage", "{00000000-0000-0000-0000-000000000000}"),
            (
                "relative_path",
                "</style><script>alert(\"locator\")</script>\u{7}'&amp;",
            ),
        ])
        .build();
    img.patch(0x60000, b"<script>alert(1)</script></style>\"'\x01\x1b");
    let p = dir.path("evil<script>alert(\"name\")<\\script>'.vhdx");
    img.write_to(Path::new(&p)).unwrap();
    p
}

/// (exit code, page) of `check --format html ARGS`.
fn html_of(args: &[&str]) -> (i32, String) {
    let mut a = vec!["check", "--format", "html"];
    a.extend_from_slice(args);
    let (code, out, err) = run(&a);
    assert!(code == 0 || code == 1, "exit {code}: {err}");
    (code, out)
}

/// Every rule id of the JSON output for the same arguments, shown or suppressed.
fn json_ids(args: &[&str]) -> BTreeSet<String> {
    let mut a = vec!["check", "--format", "json"];
    a.extend_from_slice(args);
    let (_, out, _) = run(&a);
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut ids = BTreeSet::new();
    for img in v["images"].as_array().unwrap() {
        // Entries not checked (unreadable, skipped) have neither.
        for f in img["findings"].as_array().into_iter().flatten() {
            ids.insert(f["rule"].as_str().unwrap().to_string());
        }
        for k in img["suppressed"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|o| o.0)
        {
            ids.insert(k.clone());
        }
    }
    ids
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            out.push(if k <= c.len() {
                A[(n >> (18 - 6 * k) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// The structural contract of a page: no parse error, the CSP first in <head> with the
/// hashes of the one style and one script block, no fetchable reference, bounded maps,
/// and every rule id of `ids` with a finding row or a "not shown" count and a rule text.
fn assert_page(page: &str, ids: &BTreeSet<String>) -> Html {
    let doc = Html::parse_document(page);
    assert!(doc.errors.is_empty(), "HTML parse errors: {:?}", doc.errors);
    let csp = doc
        .select(&sel("head > meta[http-equiv=\"Content-Security-Policy\"]"))
        .next()
        .expect("a CSP meta tag")
        .value()
        .attr("content")
        .unwrap()
        .to_string();
    assert!(csp.starts_with("default-src 'none'; "), "{csp}");
    let styles: Vec<_> = doc.select(&sel("style")).collect();
    let scripts: Vec<_> = doc.select(&sel("script")).collect();
    assert_eq!(
        (styles.len(), scripts.len()),
        (1, 1),
        "one inline block each"
    );
    for (kind, el) in [("style-src", &styles[0]), ("script-src", &scripts[0])] {
        let text: String = el.text().collect();
        let hash = format!("'sha256-{}'", b64(&Sha256::digest(text.as_bytes())));
        assert!(
            csp.contains(&format!("{kind} {hash}")),
            "{kind} hash {hash} not in {csp}"
        );
    }
    assert!(scripts[0].value().attr("src").is_none());
    // Nothing to fetch: no src anywhere, links only to fragments or the rule pages.
    assert_eq!(
        doc.select(&sel("[src], link, iframe, object, embed, img"))
            .count(),
        0
    );
    for a in doc.select(&sel("[href]")) {
        let href = a.value().attr("href").unwrap();
        assert!(
            href.starts_with('#') || href.starts_with("docs/rules/"),
            "reference {href:?}"
        );
    }
    assert!(!page.contains("url("), "CSS fetch");
    let maps: Vec<_> = doc.select(&sel("svg.map")).collect();
    assert!(!maps.is_empty(), "no SVG map");
    for m in &maps {
        let n = m.descendants().count();
        assert!(n <= 4 * 2000, "{n} nodes in one map");
        let rects = m.select(&sel("rect")).count();
        assert!(rects <= 2000, "{rects} rects in one map");
    }
    // Every in-page link has its target.
    let targets: BTreeSet<&str> = doc
        .select(&sel("[id]"))
        .filter_map(|e| e.value().attr("id"))
        .collect();
    for a in doc.select(&sel("[href^=\"#\"]")) {
        let id = &a.value().attr("href").unwrap()[1..];
        assert!(targets.contains(id), "link to missing #{id}");
    }
    let text: String = doc.root_element().text().collect();
    for id in ids {
        assert!(
            doc.select(&sel(&format!("dt[id=\"rule-{id}\"]")))
                .next()
                .is_some(),
            "rule text of {id} missing"
        );
        assert!(text.contains(id.as_str()), "{id} not in the page");
    }
    doc
}

#[test]
fn pages_of_the_corpus_parse_and_hold_every_finding() {
    let images = corpus_images();
    for img in &images {
        let (code, page) = html_of(&[img]);
        let doc = assert_page(&page, &json_ids(&[img]));
        let verdict = doc
            .select(&sel("section.image"))
            .next()
            .unwrap()
            .value()
            .attr("data-verdict")
            .unwrap()
            .to_string();
        assert_eq!(
            verdict,
            if code == 0 { "accept" } else { "reject" },
            "{img}"
        );
        // The file map, the log and the structures are there.
        assert!(
            doc.select(&sel("svg[id^=\"map-\"]")).next().is_some(),
            "{img}"
        );
        assert!(page.contains("<h3>Log</h3>"), "{img}");
    }
    // A batch is one document with an index entry per image.
    let args: Vec<&str> = images.iter().map(String::as_str).collect();
    let (_, page) = html_of(&args);
    let doc = assert_page(&page, &json_ids(&args));
    assert_eq!(doc.select(&sel("nav.index li")).count(), images.len());
    assert_eq!(
        doc.select(&sel("section.image[data-verdict]")).count(),
        images.len()
    );
}

#[test]
fn damaged_page_marks_overlap_past_eof_and_hidden_data() {
    let img = corpus("damaged-multi.vhdx");
    let (code, page) = html_of(&[img.to_str().unwrap()]);
    assert_eq!(code, 1);
    let doc = assert_page(&page, &json_ids(&[img.to_str().unwrap()]));
    let map = doc.select(&sel("svg#map-0")).next().unwrap();
    // LAYOUT-001 (overlap) and BAT-014 (past EOF) in the error colour, LAYOUT-006 hidden.
    let titles = |class: &str| -> Vec<String> {
        map.select(&sel(&format!("rect.{class} > title")))
            .map(|t| t.text().collect())
            .collect()
    };
    let err = titles("m-err");
    assert!(err.iter().any(|t| t.starts_with("LAYOUT-001")), "{err:?}");
    assert!(err.iter().any(|t| t.contains("BAT-014")), "{err:?}");
    assert!(titles("m-hid").iter().any(|t| t.starts_with("LAYOUT-006")));
    // The block past the end of the file is drawn, right of the end-of-file line.
    assert!(map.value().attr("data-file").is_some(), "split scale");
    assert!(map.select(&sel("line.eof")).next().is_some());
    // The hidden bytes have a hex preview.
    let hex: String = doc
        .select(&sel("pre.hex"))
        .next()
        .expect("hex preview")
        .text()
        .collect();
    assert!(hex.starts_with("0x0000060000"), "{hex}");
    assert!(hex.contains("hidden-evidence"), "{hex}");
    // Each rule that fired: a relative link to its page in the source tree (which exists),
    // its title, rationale and what to do, from the catalogue.
    let rule = vhdx_check::rules::catalogue::catalogue()
        .get("LAYOUT-001")
        .unwrap();
    let dd: String = doc
        .select(&sel("dt#rule-LAYOUT-001 + dd"))
        .next()
        .expect("rule text")
        .text()
        .collect();
    assert!(dd.contains(rule.title) && dd.contains(rule.rationale));
    assert!(
        dd.contains(&format!("What to do: {}", rule.advice())),
        "{dd}"
    );
    let link = doc
        .select(&sel("dt#rule-LAYOUT-001 a"))
        .next()
        .unwrap()
        .value()
        .attr("href")
        .unwrap()
        .to_string();
    assert_eq!(link, "docs/rules/LAYOUT-001.md");
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(&link).is_file());
}

#[test]
fn strings_from_the_image_are_escaped() {
    let dir = Scratch::new("html-escape");
    let p = hostile_in(&dir);
    let (_, page) = html_of(&[&p]);
    let doc = assert_page(&page, &json_ids(&[&p]));
    // One script element (the page's own): none injected; the strings show as text.
    assert_eq!(doc.select(&sel("script")).count(), 1);
    assert_eq!(doc.select(&sel("style")).count(), 1);
    for bad in ["<script>alert", "</style><script>", "alert(\"locator\")"] {
        assert!(!page.contains(bad), "{bad} unescaped");
    }
    let text: String = doc.root_element().text().collect();
    assert!(
        text.contains("<script>alert('creator')</script>\"\\u{1}"),
        "creator"
    );
    assert!(
        text.contains("</style><script>alert(\"locator\")</script>\\u{7}'&amp;"),
        "locator value"
    );
    assert!(
        text.contains("evil<script>alert(\"name\")<\\script>'.vhdx"),
        "path"
    );
    assert!(!page.contains('\u{1}') && !page.contains('\u{7}') && !page.contains('\u{1b}'));
}

#[test]
fn chain_page_lists_members_and_linkage() {
    let dir = Scratch::new("html-chain");
    let (pp, cp) = chain_in(&dir);
    let args = ["--parent", pp.as_str(), cp.as_str()];
    let (code, page) = html_of(&args);
    assert_eq!(code, 0, "{page}");
    let doc = assert_page(&page, &json_ids(&args));
    assert_eq!(doc.select(&sel("section.image[data-verdict]")).count(), 2);
    let text: String = doc.root_element().text().collect();
    assert!(
        text.contains("named with --parent"),
        "how the parent was found"
    );
    assert!(text.contains("Linkage checks (CHAIN rules)"));
    assert!(text.contains("parent_linkage"));
    // Found through the locator: the key that found it.
    let args = ["--find-parents", cp.as_str()];
    let (_, page) = html_of(&args);
    assert_page(&page, &json_ids(&args));
    assert!(
        page.contains("<td>relative_path</td>"),
        "found via the locator"
    );
}
