//! The page in a headless Chromium (when installed): the script runs under the CSP.

use super::*;

// ---- headless Chromium -----------------------------------------------------------------

fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(name).output()
            && out.status.success()
        {
            let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !p.is_empty() {
                return Some(PathBuf::from(p));
            }
        }
    }
    None
}

/// Runs headless Chromium on `page` (a file): the DOM after the script ran, the browser's
/// stderr (console messages), and the URLs of the requests the page started (net-log
/// requests with an initiator origin; the browser's own, "not an origin", are not the
/// page's). No name resolves, so nothing leaves the machine either way.
fn browse(
    chrome: &Path,
    page: &Path,
    work: &Scratch,
    tag: &str,
    shot: Option<&Path>,
) -> (String, String, Vec<String>) {
    let profile = work.path(&format!("profile-{tag}"));
    let netlog = work.path(&format!("net-{tag}.json"));
    let mut cmd = Command::new(chrome);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1400,2000",
        "--virtual-time-budget=3000",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ])
    .arg(format!("--user-data-dir={profile}"))
    .arg(format!("--log-net-log={netlog}"));
    match shot {
        Some(png) => cmd.arg(format!("--screenshot={}", png.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(&netlog).unwrap_or_default();
    let v: Value = serde_json::from_str(&log).expect("chromium wrote a complete net-log");
    let events = v["events"].as_array().expect("net-log events");
    assert!(!events.is_empty(), "empty net-log");
    let urls = (events.iter())
        .filter_map(|e| {
            let p = &e["params"];
            let initiator = p["initiator"].as_str()?;
            (initiator != "not an origin").then(|| format!("{initiator} -> {}", p["url"]))
        })
        .collect();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        urls,
    )
}

#[test]
fn pages_render_in_headless_chromium_without_errors_or_requests() {
    let Some(chrome) = chromium() else {
        eprintln!("skipped: no chromium in PATH (apt-get install chromium)");
        return;
    };
    let work = Scratch::new("html-chromium");
    let (_, cp) = chain_in(&work);
    let hostile = hostile_in(&work);
    let images = corpus_images();
    let mut docs: Vec<(&str, Vec<String>)> = vec![
        ("corpus", images.clone()),
        ("chain", vec!["--find-parents".into(), cp.clone()]),
        ("hostile", vec![hostile.clone()]),
    ];
    for img in &images {
        let name = Path::new(img).file_stem().unwrap().to_str().unwrap();
        if name == "damaged-multi" || name == "qemu-log-pending" {
            docs.push((
                if name == "damaged-multi" {
                    "damaged"
                } else {
                    "pending"
                },
                vec![img.clone()],
            ));
        }
    }
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/html-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    for (tag, args) in &docs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (_, page) = html_of(&args);
        let file = work.0.join(format!("{tag}.html"));
        std::fs::write(&file, &page).unwrap();
        let (dom, stderr, urls) = browse(&chrome, &file, &work, tag, None);
        // The script ran under the CSP (its hash matched), and nothing was refused.
        assert!(
            dom.contains("data-script=\"ok\""),
            "{tag}: script did not run\n{stderr}"
        );
        assert!(
            !dom.contains("data-csp-violations=\""),
            "{tag}: CSP violation: {}",
            dom.split("data-csp-last=")
                .nth(1)
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>()
        );
        for line in stderr.lines() {
            let l = line.to_ascii_lowercase();
            assert!(
                !(l.contains("console") || l.contains("uncaught") || l.contains("refused to")),
                "{tag}: browser reported: {line}"
            );
        }
        assert!(urls.is_empty(), "{tag}: the page made requests: {urls:?}");
        // Every finding's rule id is in the rendered DOM.
        for id in json_ids(&args) {
            assert!(
                dom.contains(&format!("id=\"rule-{id}\"")),
                "{tag}: {id} missing"
            );
        }
        assert!(dom.contains("<svg class=\"map\""), "{tag}: no map");
        if *tag == "damaged" || *tag == "pending" || *tag == "chain" {
            let png = artifacts.join(format!("{tag}.png"));
            let _ = std::fs::remove_file(&png);
            browse(&chrome, &file, &work, &format!("{tag}-shot"), Some(&png));
            let n = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
            assert!(n > 10_000, "{tag}: screenshot of {n} bytes");
            eprintln!("screenshot: {}", png.display());
        }
    }
}

#[test]
fn digests_and_unreadable_files_have_their_place() {
    let img = corpus("qemu-fixed-1M.vhdx");
    let (code, page, _) = run(&[
        "check",
        "--format",
        "html",
        "--hash",
        "sha256",
        img.to_str().unwrap(),
        "missing.vhdx",
    ]);
    assert_eq!(code, 2, "an unreadable file is a tool failure");
    let (_, json, _) = run(&[
        "check",
        "--format",
        "json",
        "--hash",
        "sha256",
        img.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_str(&json).unwrap();
    let file_digest = v["images"][0]["digests"]["file"].as_str().unwrap();
    let doc = assert_page(&page, &BTreeSet::new());
    assert!(page.contains("<h3>Digests</h3>") && page.contains(file_digest));
    let error = doc
        .select(&sel("section.image[data-verdict=\"error\"]"))
        .next()
        .expect("the unreadable file's section");
    let text: String = error.text().collect();
    assert!(
        text.contains("Not checked: cannot read missing.vhdx"),
        "{text}"
    );
    assert_eq!(doc.select(&sel("nav.index li")).count(), 2);
}
