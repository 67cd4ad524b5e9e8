//! A parallel word count. A `split` task cuts the text into chunks and submits one `count` task
//! per chunk, returning the `ObjectRef`s of those tasks; a `merge` task receives the list of
//! references, reads each count and adds them up. Tasks return references to other tasks'
//! results, and references travel inside values.
//!
//! Run with `cargo run -p raya-examples --bin wordcount`.

use std::collections::HashMap;

use raya::prelude::*;

const TEXT: &str = "the quick brown fox jumps over the lazy dog
a journey of a thousand miles begins with a single step
the early bird catches the worm but the second mouse gets the cheese
all that glitters is not gold and not all those who wander are lost";

type Counts = HashMap<String, u64>;

#[raya::remote]
fn count(lines: Vec<String>) -> Counts {
    let mut counts = Counts::new();
    for word in lines.iter().flat_map(|l| l.split_whitespace()) {
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    counts
}

#[raya::remote]
fn split(text: String, chunks: usize) -> Vec<ObjectRef<Counts>> {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let per_chunk = lines.len().div_ceil(chunks).max(1);
    lines
        .chunks(per_chunk)
        .map(|c| count::remote(c.to_vec()))
        .collect()
}

#[raya::remote]
fn merge(parts: Vec<ObjectRef<Counts>>) -> raya::Result<Counts> {
    let mut total = Counts::new();
    for part in raya::get_all(&parts)? {
        for (w, n) in part {
            *total.entry(w).or_default() += n;
        }
    }
    Ok(total)
}

fn main() -> raya::Result<()> {
    raya_examples::init_logging();
    raya::init(raya::Config::default())?;
    let text: String = std::iter::repeat_n(TEXT, 250)
        .collect::<Vec<_>>()
        .join("\n");
    let parts: ObjectRef<Vec<ObjectRef<Counts>>> = split::remote(text.clone(), 16);
    let merged = raya::get(&merge::remote(parts))?;

    let mut top: Vec<(&String, &u64)> = merged.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let words: u64 = merged.values().sum();
    println!("{words} words, {} distinct", merged.len());
    for (w, n) in top.iter().take(5) {
        println!("{w:>8} {n}");
    }
    // The same count done sequentially agrees.
    let sequential = text.split_whitespace().count() as u64;
    assert_eq!(words, sequential);
    raya::shutdown();
    Ok(())
}
