//! Pages through the binary: the output file, a directory, a pending log, a chain, the
//! virtual-disk map, and the file checked rather than a later read.

use super::*;

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
