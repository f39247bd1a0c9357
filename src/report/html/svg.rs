//! SVG primitives shared by the maps: a titled rect, the offset axis, the legend.

use super::WIDTH;
use super::escape::{esc, hex, size};
use super::scale::{SPLIT_X, Scale};
use std::fmt::Write as _;

pub(super) fn rect(s: &mut String, x: f64, y: f64, w: f64, h: f64, class: &str, title: &str) {
    let _ = write!(
        s,
        "<rect x=\"{x:.2}\" y=\"{y}\" width=\"{:.2}\" height=\"{h}\" class=\"{class}\"><title>{}</title></rect>",
        w.max(0.8),
        esc(title)
    );
}

pub(super) fn axis(s: &mut String, y: f64, scale: &Scale) {
    let xs: &[f64] = if scale.split() {
        &[0.0, 425.0, SPLIT_X, WIDTH]
    } else {
        &[0.0, 250.0, 500.0, 750.0, WIDTH]
    };
    for &x in xs {
        let off = scale.at(x);
        let anchor = if x == 0.0 {
            "start"
        } else if x == WIDTH {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            s,
            "<text class=\"axis\" x=\"{x}\" y=\"{y}\" text-anchor=\"{anchor}\">{} ({})</text>",
            hex(off),
            size(off)
        );
    }
}

pub(super) fn legend(s: &mut String, items: &[(&str, &str)]) {
    s.push_str("<div class=\"legend\">");
    for (class, label) in items {
        let _ = write!(s, "<span><i class=\"l-{class}\"></i>{}</span>", esc(label));
    }
    s.push_str("</div>\n");
}
