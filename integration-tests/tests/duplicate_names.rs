//! Two remote functions registered under one name: Raya refuses to start, naming it.
//! (A binary of its own: the duplicate is part of the binary.)

#[raya::remote(name = "shared::name")]
fn first() -> u8 {
    1
}

mod other {
    #[raya::remote(name = "shared::name")]
    pub(crate) fn second() -> u8 {
        2
    }
}

#[test]
fn duplicate_registrations_are_a_clear_error() {
    let e = raya::init(raya::Config::default().num_cpus(1)).unwrap_err();
    assert_eq!(e, raya::Error::DuplicateFunction("shared::name".into()));
    assert!(e.to_string().contains("registered more than once"), "{e}");
    assert!(!raya::is_initialized());
    // Both functions exist; only their registration clashes.
    assert_eq!(first(), 1);
    assert_eq!(other::second(), 2);
}
