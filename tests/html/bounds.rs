//! Pages of images too large to draw one by one: bounded maps and finding rows.

use super::*;

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
