//! Writes the seed corpus of every fuzz target: `write-seeds <dir>` makes `<dir>/<target>/seed-N`.

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "corpus".into());
    let seeds = raya_wire_fuzz::seeds::seeds();
    for (i, (target, input)) in seeds.iter().enumerate() {
        let d = dir.join(target.name());
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(format!("seed-{i:03}")), input)?;
    }
    eprintln!("{} seeds written under {}", seeds.len(), dir.display());
    Ok(())
}
