//! Two behaviours of one program with the same name: registering fails at start-up, naming
//! both types. (A test binary of its own, since the registry covers the whole program.)

use noex::{BuildError, Node, RegistryError};

mod first {
    use noex::behavior;

    #[behavior(name = "dup")]
    pub struct Dup;

    #[behavior]
    impl Dup {
        #[init]
        fn init() -> Self {
            Dup
        }
    }
}

mod second {
    use noex::behavior;

    #[behavior(name = "dup")]
    pub struct Dup;

    #[behavior]
    impl Dup {
        #[init]
        fn init() -> Self {
            Dup
        }
    }
}

#[test]
fn two_behaviours_with_one_name_fail_registration_with_both_types() {
    let node = Node::builder().name("dup").threads(1).build();
    let error = noex::register_all!(node).unwrap_err();
    assert_eq!(
        error,
        RegistryError::DuplicateName {
            name: "dup".into(),
            first: "duplicate_behavior_names::first::Dup",
            second: "duplicate_behavior_names::second::Dup",
        }
    );
    assert!(error.to_string().contains("#[behavior(name = \"...\")]"));
    assert!(node.behaviors().is_empty(), "nothing is registered");
    node.shutdown();
}

#[test]
fn a_builder_registering_them_returns_the_error_from_try_build() {
    let error = Node::builder()
        .name("dup")
        .threads(1)
        .register_behaviors()
        .try_build()
        .expect_err("two behaviours share a name");
    match error {
        BuildError::Behaviors(RegistryError::DuplicateName { name, .. }) => assert_eq!(name, "dup"),
        other => panic!("unexpected error: {other}"),
    }
}
