//! `vhdx_check._native`: the Rust side of the `vhdx_check` Python package. Thin: every
//! check and every read is the library's (`vhdx_check::embed`); the file-like object, the
//! dicts and the documented API are in pysrc/vhdx_check/__init__.py. The GIL is released
//! while the library checks, opens or reads.

use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::PathBuf;
use vhdx_check::embed;
use vhdx_check::model::virtual_disk::ViewChoice;

create_exception!(
    vhdx_check,
    Error,
    PyOSError,
    "An image that cannot be checked or read, or a read that failed; the message is the \
     reason the command line prints."
);

fn error(why: impl Into<String>) -> PyErr {
    Error::new_err(why.into())
}

/// `(document, errors)`: the JSON text `check --format json` writes, and the reasons of
/// the entries that could not be checked.
#[pyfunction]
#[pyo3(signature = (path, parents, find_parents, policy, max_per_rule))]
fn check_json(
    py: Python<'_>,
    path: PathBuf,
    parents: Vec<PathBuf>,
    find_parents: bool,
    policy: Option<PathBuf>,
    max_per_rule: u64,
) -> PyResult<(String, Vec<String>)> {
    let doc = py
        .detach(|| {
            embed::check_json(
                &path,
                &parents,
                find_parents,
                policy.as_deref(),
                max_per_rule,
            )
        })
        .map_err(error)?;
    Ok((doc.json, doc.errors))
}

/// The JSON text of `rules --format json`.
#[pyfunction]
fn rules_json() -> String {
    embed::rules_json()
}

/// One extent as Python gets it: `(offset, length, state, member, file_offset)`.
type ExtentTuple = (u64, u64, &'static str, Option<usize>, Option<u64>);

/// The virtual disk of an image or chain (`vhdx_check::embed::Disk`).
#[pyclass(frozen, name = "Disk", module = "vhdx_check._native")]
struct Disk {
    inner: embed::Disk,
}

#[pymethods]
impl Disk {
    #[new]
    #[pyo3(signature = (path, parents, find_parents, view))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        parents: Vec<PathBuf>,
        find_parents: bool,
        view: &str,
    ) -> PyResult<Disk> {
        let view = match view {
            "replayed" => ViewChoice::Replayed,
            "raw" => ViewChoice::Raw,
            other => {
                return Err(PyValueError::new_err(format!(
                    "view is \"replayed\" or \"raw\", not {other:?}"
                )));
            }
        };
        let inner = py
            .detach(|| embed::Disk::open(&path, &parents, find_parents, view))
            .map_err(error)?;
        Ok(Disk { inner })
    }

    #[getter]
    fn size(&self) -> u64 {
        self.inner.size()
    }

    #[getter]
    fn logical_sector_size(&self) -> u64 {
        self.inner.logical_sector_size()
    }

    /// The chain as read, image first: `(path, path_bytes)` per member, `path_bytes` the
    /// raw bytes in hex where the path is not UTF-8 (as the JSON documents give them).
    fn members(&self) -> Vec<(String, Option<String>)> {
        (self.inner.members().iter())
            .map(|m| {
                let hex = (m.path.to_str().is_none()).then(|| {
                    let bytes = vhdx_check::report::path_bytes(&m.path);
                    bytes.iter().map(|b| format!("{b:02x}")).collect()
                });
                (vhdx_check::report::path_str(&m.path).into_owned(), hex)
            })
            .collect()
    }

    /// `n` virtual bytes at `offset` (which must lie within the disk), read exactly.
    fn pread<'py>(&self, py: Python<'py>, n: usize, offset: u64) -> PyResult<Bound<'py, PyBytes>> {
        PyBytes::new_with(py, n, |buf| {
            py.detach(|| self.inner.read_into(offset, buf))
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidInput => PyValueError::new_err(e.to_string()),
                    _ => error(e.to_string()),
                })
        })
    }

    /// Up to `max` extents from `start`: `(offset, length, state, member, file_offset)`.
    fn extents(&self, py: Python<'_>, start: u64, max: usize) -> PyResult<Vec<ExtentTuple>> {
        let extents = py
            .detach(|| self.inner.extents(start, max))
            .map_err(|e| error(e.to_string()))?;
        Ok((extents.into_iter())
            .map(|e| (e.offset, e.length, e.state.name(), e.member, e.file_offset))
            .collect())
    }

    /// The check of the chain read (`check_json` of the same members).
    fn report(&self, py: Python<'_>) -> PyResult<(String, Vec<String>)> {
        let members = self.inner.members().to_vec();
        let doc = py
            .detach(|| embed::check_members(members, None, 100))
            .map_err(error)?;
        Ok((doc.json, doc.errors))
    }

    fn close(&self, py: Python<'_>) {
        py.detach(|| self.inner.close());
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Error", m.py().get_type::<Error>())?;
    m.add_function(wrap_pyfunction!(check_json, m)?)?;
    m.add_function(wrap_pyfunction!(rules_json, m)?)?;
    m.add_class::<Disk>()?;
    Ok(())
}
