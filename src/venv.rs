//! Python tools installed from PyPI into project-local venvs under `.local/` (gitignored), each
//! pinned to one version and installed once: moto for the emulator, schemathesis for the
//! contract test.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use tokio::process::Command;

/// Where the project keeps what it installs: `.local/` beside the workspace manifest.
pub fn local_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".local")
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

fn marker(venv: &Path, requirement: &str) -> PathBuf {
    venv.join(format!(
        ".installed-{}",
        requirement.replace(['[', ']', '='], "_")
    ))
}

/// Makes sure `.local/<name>` is a venv holding `requirement` (a pip requirement with an exact
/// version), installing it on first use, and returns its Python. Concurrent callers (a test
/// run beside a running local system) are safe: each installs into its own temporary venv and
/// the first to finish renames it into place, so a killed install never leaves a half venv.
///
/// # Errors
/// When Python 3 with `venv` is missing or pip cannot reach PyPI.
pub async fn ensure(name: &str, requirement: &str) -> anyhow::Result<PathBuf> {
    let venv = local_dir().join(name);
    if marker(&venv, requirement).exists() {
        return Ok(venv_python(&venv));
    }
    std::fs::create_dir_all(local_dir())?;
    let tmp = local_dir().join(format!("{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!(
        "filestore: installing {requirement} into {} (first run only)...",
        venv.display()
    );
    run(Command::new("python3").arg("-m").arg("venv").arg(&tmp))
        .await
        .context("creating a Python venv (is python3 with the venv module installed? On Debian/Ubuntu: apt install python3-venv)")?;
    run(Command::new(venv_python(&tmp)).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        requirement,
    ]))
    .await
    .with_context(|| format!("installing {requirement} from PyPI"))?;
    std::fs::write(marker(&tmp, requirement), requirement)?;
    // Scripts in a venv hard-code its path; we only ever run `bin/python`, which does not.
    if std::fs::rename(&tmp, &venv).is_err() {
        if marker(&venv, requirement).exists() {
            let _ = std::fs::remove_dir_all(&tmp);
        } else {
            let _ = std::fs::remove_dir_all(&venv);
            std::fs::rename(&tmp, &venv).context("moving the venv into place")?;
        }
    }
    Ok(venv_python(&venv))
}

async fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).output().await?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd.as_std().get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
