//! The HTML evidence report (`check --format html`): parses without errors, holds every
//! finding, escapes what comes from the image, stays bounded for huge images, and renders
//! in headless Chromium without console errors or network requests.

mod chromium;

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

/// A 64 TiB dynamic disk with blocks spread over all of it, rendered from the builder's
/// sparse reader: the page stays small and each map bounded.
#[test]
fn a_64_tib_image_gives_a_bounded_page() {
    const TIB: u64 = 1 << 40;
    let mut b = ImageBuilder::dynamic(64 * TIB).block_size(32 * MIB as u32);
    // 4096 blocks, one every 16 GiB of the disk.
    for k in 0..4096u64 {
        b = b.allocate_block(k * 512);
    }
    let img = b.build();
    let src = img.reader();
    let report = check(&src, &CheckOptions::default());
    let model = Model::build(&src);
    let parts = Parts::collect(&model, None, &report);
    let page = html::render(&[checked("64t.vhdx", &report, false, &parts)]);
    let ids = report.ids().iter().map(|s| s.to_string()).collect();
    let doc = assert_page(&page, &ids);
    let map = doc.select(&sel("svg#map-0")).next().unwrap();
    let payload: usize = map.select(&sel("rect.payload")).count();
    assert!(payload >= 1, "blocks drawn");
    assert!(page.contains("Blocks: 4096 payload"), "block count");
    eprintln!("64 TiB page: {} bytes", page.len());
    assert!(page.len() < 2 << 20, "{} bytes", page.len());
}

/// 130 000 findings (one per BAT entry with reserved bits set), none capped by the check:
/// the page lists a bounded number and counts the rest.
#[test]
fn many_findings_give_a_bounded_page() {
    let mut img = ImageBuilder::dynamic(130_000 * MIB)
        .block_size(MIB as u32)
        .build();
    for k in 0..130_000u64 {
        let i = img.layout.payload_entry_index(k);
        img.set_bat_entry(i, 1 << 3);
    }
    let src = img.reader();
    let report = check(
        &src,
        &CheckOptions {
            max_per_rule: 1 << 30,
        },
    );
    assert!(
        report.findings.len() >= 130_000,
        "{}",
        report.findings.len()
    );
    let model = Model::build(&src);
    let parts = Parts::collect(&model, None, &report);
    let page = html::render(&[checked("many.vhdx", &report, true, &parts)]);
    let ids = report.ids().iter().map(|s| s.to_string()).collect();
    let doc = assert_page(&page, &ids);
    let rows = doc.select(&sel("table.findings tbody tr")).count();
    assert!(rows <= 5000, "{rows} rows");
    assert!(page.contains("more <a href=\"#rule-BAT-002\">BAT-002</a> findings not listed"));
    eprintln!(
        "{} findings: page {} bytes",
        report.findings.len(),
        page.len()
    );
    assert!(page.len() < 4 << 20, "{} bytes", page.len());
}

#[test]
fn virtual_extents_are_drawn_when_given_and_said_missing_otherwise() {
    let src = corpus("qemu-dynamic-1M.vhdx");
    let f = vhdx_check::io::FileReader::open(&src).unwrap();
    let report = check(&f, &CheckOptions::default());
    let model = Model::build(&f);
    let mut parts = Parts::collect(&model, None, &report);
    parts.virtual_disk = None;
    let page = html::render(&[checked("a.vhdx", &report, false, &parts)]);
    assert!(page.contains("Virtual disk map</h3><p class=\"muted\">not available"));
    // Many extents: still at most one rect per bin, a bounded table, the rest counted.
    let extents = (0..100_000u64).map(|k| {
        Ok(Extent {
            offset: k * 4096,
            length: 4096,
            state: if k % 3 == 0 { State::Data } else { State::Zero },
            member: (k % 3 == 0).then_some(0),
            file_offset: (k % 3 == 0).then_some(k * 4096),
        })
    });
    let names = ["<b>a.vhdx</b>".to_string()];
    parts.virtual_disk = Some(Ok(VirtualMap::collect(
        100_000 * 4096,
        extents,
        &names,
        None,
    )));
    let page = html::render(&[checked("a.vhdx", &report, false, &parts)]);
    let doc = assert_page(&page, &report.ids().iter().map(|s| s.to_string()).collect());
    let vmap = doc.select(&sel("svg#vmap-0")).next().expect("virtual map");
    let rects = vmap.select(&sel("rect")).count();
    assert!((1..=html::BINS).contains(&rects), "{rects}");
    assert!(!page.contains("<b>a.vhdx"));
    assert!(page.contains("&lt;b&gt;a.vhdx&lt;/b&gt;"));
    assert!(
        page.contains("98976 more extents not listed"),
        "1024 rows listed"
    );
}

/// The text of the first element matching `css` inside section `img-N`.
fn section_text(doc: &Html, n: usize) -> String {
    doc.select(&sel(&format!("section#img-{n}")))
        .next()
        .unwrap_or_else(|| panic!("no section img-{n}"))
        .text()
        .collect()
}

#[test]
fn html_output_file_is_the_whole_page_replaced_atomically() {
    let dir = Scratch::new("html-output");
    let target = dir.path("report.html");
    std::fs::write(&target, "the old report").unwrap();
    let img = corpus("damaged-multi.vhdx");
    let img = img.to_str().unwrap();
    let (code, out, err) = run(&["check", "--format", "html", "--output", &target, img]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "nothing on stdout with --output");
    let page = std::fs::read_to_string(&target).unwrap();
    assert_eq!(page, html_of(&[img]).1, "the file holds what stdout would");
    assert!(page.ends_with("</html>\n"));
    assert_page(&page, &json_ids(&[img]));
    // No temporary file stays beside it.
    let names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["report.html"], "{names:?}");
    // A report that cannot be written is a tool failure and leaves nothing.
    let nowhere = dir.path("no-such-dir/report.html");
    let (code, _, err) = run(&["check", "--format", "html", "--output", &nowhere, img]);
    assert_eq!(code, 2, "{err}");
    assert!(!Path::new(&nowhere).exists());
}

#[test]
fn a_directory_gives_one_page_with_every_entry_in_its_index() {
    let dir = Scratch::new("html-batch");
    for name in ["qemu-fixed-1M.vhdx", "damaged-multi.vhdx"] {
        std::fs::copy(corpus(name), dir.0.join(name)).unwrap();
    }
    // Skipped: a symbolic link met in the walk is never followed.
    std::os::unix::fs::symlink("nowhere.vhdx", dir.0.join("link.vhdx")).unwrap();
    // Unreadable: named on the command line, not there.
    let missing = dir.path("missing/gone.vhdx");
    let root = dir.0.to_str().unwrap();
    let (code, page, err) = run(&["check", "--format", "html", root, &missing]);
    assert_eq!(code, 2, "an unreadable entry is a tool failure: {err}");
    let doc = assert_page(&page, &json_ids(&[root]));
    assert_eq!(page.matches("<html").count(), 1, "one document");
    let verdicts: Vec<&str> = doc
        .select(&sel("section.image[data-verdict]"))
        .map(|e| e.value().attr("data-verdict").unwrap())
        .collect();
    assert_eq!(verdicts, ["reject", "skipped", "accept", "error"]);
    let index: Vec<String> = doc
        .select(&sel("nav.index li"))
        .map(|e| e.text().collect())
        .collect();
    assert_eq!(index.len(), 4, "{index:?}");
    assert!(index[1].contains("link.vhdx") && index[1].contains("SKIPPED"));
    assert!(index[3].contains("gone.vhdx") && index[3].contains("not checked"));
    assert!(section_text(&doc, 1).contains("symbolic link"));
    assert!(section_text(&doc, 3).contains("Not checked: cannot read"));
    // Each checked image has its own map.
    assert!(doc.select(&sel("svg#map-0")).next().is_some());
    assert!(doc.select(&sel("svg#map-2")).next().is_some());
}

#[test]
fn a_pending_log_page_holds_the_timeline_and_the_replay() {
    let img = corpus("qemu-log-pending.vhdx");
    let img = img.to_str().unwrap();
    let (_, page) = html_of(&[img]);
    let doc = assert_page(&page, &json_ids(&[img]));
    let timeline = doc.select(&sel("svg#log-0")).next().expect("log timeline");
    let entries = timeline.select(&sel("rect")).count();
    assert!(entries >= 1, "entries drawn");
    assert!(
        timeline.select(&sel("rect.replayed")).next().is_some(),
        "replayed entries outlined"
    );
    let text = section_text(&doc, 0);
    assert!(text.contains("session 0: LogGuid"), "sessions listed");
    assert!(text.contains("Replay pending"), "{text}");
}

#[test]
fn a_chain_found_through_the_locator_shows_members_and_the_map_through_the_parent() {
    let dir = Scratch::new("html-find-parents");
    let (_, cp) = chain_in(&dir);
    let (code, page) = html_of(&["--find-parents", &cp]);
    assert_eq!(code, 0, "{page}");
    let doc = assert_page(&page, &json_ids(&["--find-parents", &cp]));
    assert_eq!(doc.select(&sel("section.image[data-verdict]")).count(), 2);
    // The child's chain table: itself, then the parent found via relative_path.
    let rows: Vec<String> = doc
        .select(&sel("section#img-0 h3 + table tbody tr"))
        .map(|r| r.text().collect())
        .collect();
    assert!(rows.len() >= 2, "{rows:?}");
    assert!(rows[0].contains("child.avhdx") && rows[0].contains("(this image)"));
    assert!(rows[1].contains("parent.vhdx") && rows[1].contains("relative_path"));
    // The child's virtual disk through its parent: sectors from each file.
    let vrows: Vec<String> = doc
        .select(&sel("table#vt-0 tbody tr"))
        .map(|r| r.text().collect())
        .collect();
    assert!(vrows.iter().any(|r| r.contains("child.avhdx")), "{vrows:?}");
    assert!(vrows.iter().any(|r| r.contains("parent.vhdx")), "{vrows:?}");
    // Checked alone, the differencing child has no map and says how to get one.
    let (_, page) = html_of(&[&cp]);
    assert!(page.contains("not available: a differencing disk"), "alone");
    assert!(page.contains("checked alone"));
}

#[test]
fn a_dynamic_image_has_its_virtual_disk_map() {
    let img = corpus("qemu-dynamic-1M.vhdx");
    let img = img.to_str().unwrap();
    let (_, page) = html_of(&[img]);
    let doc = assert_page(&page, &json_ids(&[img]));
    let vmap = doc.select(&sel("svg#vmap-0")).next().expect("virtual map");
    assert!(vmap.select(&sel("rect")).count() >= 1);
    let states: BTreeSet<String> = doc
        .select(&sel("table#vt-0 tbody tr td:nth-child(3)"))
        .map(|c| c.text().collect())
        .collect();
    assert!(!states.is_empty(), "extent rows");
    assert!(
        states
            .iter()
            .all(|s| ["data", "zero", "unallocated", "partial"].contains(&s.as_str())),
        "{states:?}"
    );
}

/// The page's parts come from the check itself: the file can be gone by the time the
/// page is written (the branch's first version read it again by name, and would have
/// shown another file, or none).
#[test]
fn the_page_is_of_the_file_checked_not_of_a_later_read() {
    use vhdx_check::batch::{self, Job, Task};
    use vhdx_check::chain::Member;
    let dir = Scratch::new("html-no-reread");
    let p = dir.0.join("x.vhdx");
    std::fs::copy(corpus("damaged-multi.vhdx"), &p).unwrap();
    let policy = vhdx_check::policy::Policy::default();
    let job = Job {
        opts: CheckOptions::default(),
        policy: &policy,
        hash: false,
        html: true,
    };
    let tasks = [Task::Chain(vec![Member::named(&p)])];
    let mut page = String::new();
    let r: Result<(), ()> = batch::run(&tasks, &job, &|_, _| {}, |o| {
        std::fs::remove_file(&o.path).unwrap();
        let batch::Status::Checked(r) = &o.status else {
            panic!("not checked")
        };
        page = html::render(&[Checked {
            path: &o.path,
            outcome: Status::Report(r),
            rejected: true,
            parts: o.html.as_deref(),
        }]);
        Ok(())
    });
    assert!(r.is_ok());
    let doc = assert_page(&page, &BTreeSet::new());
    assert!(doc.select(&sel("svg#map-0")).next().is_some(), "file map");
    assert!(
        page.contains("hidden-evidence"),
        "hex preview of the file checked"
    );
    assert!(page.contains("Everything parsed (the info document)"));
}
