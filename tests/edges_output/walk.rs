//! What a directory walk meets: unreadable directories, symbolic links, FIFOs.

use super::*;

/// The non-root user tests drop to, when they run as root (root reads any directory).
fn as_nobody(cmd: &mut Command) -> Option<Command> {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if !root {
        return Some(std::mem::replace(cmd, Command::new("true")));
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        println!("skipped: running as root and setpriv is not available");
        return None;
    }
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    c.arg(cmd.get_program()).args(cmd.get_args());
    Some(c)
}

#[test]
fn an_unreadable_directory_is_an_entry_and_the_rest_is_checked() {
    let dir = Scratch::new("edges-unreadable");
    let root = &dir.0;
    std::fs::create_dir_all(root.join("locked")).unwrap();
    small(1).write_to(&root.join("a.vhdx")).unwrap();
    small(2).write_to(&root.join("locked/hidden.vhdx")).unwrap();
    let mut bad = small(3);
    bad.patch(0, b"XXXX"); // FTI-002: rejected
    bad.write_to(&root.join("z.vhdx")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    for p in [root.as_path(), &root.join("a.vhdx"), &root.join("z.vhdx")] {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    for format in ["json", "sarif", "text"] {
        let mut plain = bin();
        plain.args(["check", "--format", format, root.to_str().unwrap()]);
        let Some(mut cmd) = as_nobody(&mut plain) else {
            return;
        };
        let (code, out, err) = output(&mut cmd);
        assert_eq!(code, 2, "{format}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("cannot read directory"), "{err}");
        let locked = dir.path("locked");
        match format {
            "json" => {
                let v = json(&out);
                let images = v["images"].as_array().unwrap();
                let got: Vec<(&str, &str)> = images
                    .iter()
                    .map(|i| (i["path"].as_str().unwrap(), i["verdict"].as_str().unwrap()))
                    .collect();
                let a = dir.path("a.vhdx");
                let z = dir.path("z.vhdx");
                assert_eq!(
                    got,
                    vec![
                        (a.as_str(), "accept"),
                        (locked.as_str(), "error"),
                        (z.as_str(), "reject")
                    ]
                );
                assert_eq!(images[1]["status"], "error");
                let why = images[1]["error"].as_str().unwrap();
                assert!(why.contains("Permission denied"), "{why}");
            }
            "sarif" => {
                let v = json(&out);
                let run0 = &v["runs"][0];
                assert_eq!(run0["artifacts"].as_array().unwrap().len(), 3);
                let inv = &run0["invocations"][0];
                assert_eq!(inv["executionSuccessful"], false);
                let n = &inv["toolExecutionNotifications"][0];
                assert_eq!(n["level"], "error");
                assert!(n["message"]["text"].as_str().unwrap().contains("locked"));
            }
            _ => {
                assert!(out.contains(&format!("{locked}: ERROR  cannot read directory")));
                assert!(
                    out.contains(": ACCEPT") && out.contains(": REJECT"),
                    "{out}"
                );
            }
        }
    }
    // Removable again when the tests do not run as root.
    std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_walk_follows_no_symlink_and_lists_what_it_skips() {
    let dir = Scratch::new("edges-links");
    let tree = dir.0.join("tree");
    let outside = dir.0.join("outside");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    small(1).write_to(&tree.join("real.vhdx")).unwrap();
    // Files a link could lead to: their first bytes would be quoted by FTI-002/FTI-004.
    std::fs::write(
        outside.join("secret.txt"),
        b"SECRETBYTES-of-an-unrelated-file",
    )
    .unwrap();
    std::fs::write(
        outside.join("deep.vhdx"),
        b"SECRETBYTES-in-a-linked-directory",
    )
    .unwrap();
    let link = |target: &Path, name: &str| {
        std::os::unix::fs::symlink(target, tree.join(name)).unwrap();
    };
    link(&outside.join("secret.txt"), "link.vhdx");
    link(&outside, "linked-dir");
    link(&outside, "dirlink.vhdx");
    link(&dir.0.join("nowhere"), "dangling.avhdx");
    link(&tree.join("loop.vhdx"), "loop.vhdx"); // leads back to itself
    link(&outside.join("secret.txt"), "notes.txt"); // no image name: not a candidate
    let have_fifo = Command::new("mkfifo")
        .arg(tree.join("pipe.vhdx"))
        .status()
        .is_ok_and(|s| s.success());
    if !have_fifo {
        println!("mkfifo unavailable: FIFO case not covered");
    }
    let mut want = vec![
        ("dangling.avhdx", "skipped"),
        ("dirlink.vhdx", "skipped"),
        ("link.vhdx", "skipped"),
        ("loop.vhdx", "skipped"),
    ];
    if have_fifo {
        want.push(("pipe.vhdx", "skipped"));
    }
    want.push(("real.vhdx", "accept"));
    let tree_s = tree.to_str().unwrap();
    for format in ["text", "json", "sarif"] {
        let (code, out, err) = run(&["check", "--format", format, tree_s]);
        // Skipped entries do not fail the run; a FIFO is never opened (no hang).
        assert_eq!(code, 0, "{format}: {err}");
        assert!(err.is_empty(), "{err}");
        assert!(
            !out.contains("SECRET"),
            "{format}: a link was followed:\n{out}"
        );
        match format {
            "json" => {
                let v = json(&out);
                let got: Vec<(String, String)> = (v["images"].as_array().unwrap().iter())
                    .map(|i| {
                        let p = i["path"].as_str().unwrap();
                        let name = p.rsplit('/').next().unwrap().to_string();
                        (name, i["verdict"].as_str().unwrap().to_string())
                    })
                    .collect();
                let want: Vec<(String, String)> = (want.iter())
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect();
                assert_eq!(got, want);
                for i in v["images"].as_array().unwrap() {
                    if i["verdict"] == "skipped" {
                        assert_eq!(i["status"], "skipped");
                        assert!(i["reason"].as_str().is_some_and(|r| !r.is_empty()));
                    }
                }
                let dangling = &v["images"][0]["reason"];
                assert!(
                    dangling.as_str().unwrap().contains("dangling"),
                    "{dangling}"
                );
                let looping = &v["images"][3]["reason"];
                assert!(looping.as_str().unwrap().contains("loops"), "{looping}");
            }
            "sarif" => {
                let v = json(&out);
                let inv = &v["runs"][0]["invocations"][0];
                assert_eq!(inv["executionSuccessful"], true);
                let notes = inv["toolExecutionNotifications"].as_array().unwrap();
                assert_eq!(notes.len(), want.len() - 1);
                assert!(notes.iter().all(|n| n["level"] == "warning"));
                crate::sarif::assert_valid_sarif(&v);
            }
            _ => {
                assert_eq!(out.matches(": SKIPPED  ").count(), want.len() - 1, "{out}");
            }
        }
    }
    // A link named on the command line is followed: the user asked for it.
    let (code, out, _) = run(&["check", "--format", "json", &format!("{tree_s}/link.vhdx")]);
    assert_eq!(code, 1);
    // The target (32 bytes) was read: it is too short to be a VHDX (FTI-007).
    let v = json(&out);
    assert_eq!(v["images"][0]["size"], 32, "{out}");
    assert_eq!(v["images"][0]["findings"][0]["rule"], "FTI-007", "{out}");
}
