//! Directories and files only their owner can open: a node's session, spill, GCS and log
//! directories are created 0700 and the files Raya writes in them 0600, so another user of
//! the machine can read neither objects spilled to disk nor a node's records. The parents of
//! such a directory (the shared `$TMPDIR/raya`) keep the default mode.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// The mode of the directories Raya creates for itself.
pub const DIR_MODE: u32 = 0o700;
/// The mode of the files Raya writes.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and any missing parent) and makes `dir` itself private to its owner, also
/// when it already existed.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    match builder.create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {
            restrict(dir, DIR_MODE)
        }
        Err(e) => Err(e),
    }
}

/// Creates (or truncates) the file at `path`, readable and writable by its owner only.
pub fn create(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(FILE_MODE);
    }
    let file = opts.open(path)?;
    // A file that existed keeps its mode through `open`: make it private too.
    restrict(path, FILE_MODE)?;
    Ok(file)
}

/// Writes `bytes` to a private file at `path` (see [`create`]).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    create(path)?.write_all(bytes)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_files_are_private_even_when_they_existed() {
        let base = std::env::temp_dir().join(format!("raya-private-fs-{}", std::process::id()));
        let dir = base.join("a").join("session");
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        // A directory that was open to everyone is closed.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        let file = dir.join("record");
        std::fs::write(&file, b"old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&file, b"new").unwrap();
        assert_eq!(mode(&file), FILE_MODE);
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
        // A path that is a file is not taken for a directory.
        assert!(create_dir(&file).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
