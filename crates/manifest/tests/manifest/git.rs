//! The `git` section.

use crate::common::{Fixture, GITHUB_KEY, assert_problem, git_entry, problem};

#[test]
fn misspelt_keys_suggest_the_right_one() {
    let fx = Fixture::new();
    let entry = git_entry(&fx, "app").replace("Upstream:", "Upstrem:");
    let p = problem(fx.bottle(&format!("git:\n{entry}")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        4,
        &[
            "unknown key `Upstrem` in git[0]; did you mean `Upstream`?",
            "`KnownHostKey`",
        ],
    );
    let entry = git_entry(&fx, "app") + "    AllowForcePush: true\n";
    let p = problem(fx.bottle(&format!("git:\n{entry}")));
    assert!(
        p.message.contains("unknown key `AllowForcePush` in git[0]"),
        "{p}"
    );
    assert!(
        p.hint.as_deref().unwrap().contains("`allow_force_push`"),
        "{p}"
    );
}

#[test]
fn duplicate_names_are_refused_at_the_second() {
    let fx = Fixture::new();
    let yaml = format!(
        "git:\n{}{}{}",
        git_entry(&fx, "app"),
        git_entry(&fx, "lib"),
        git_entry(&fx, "app")
    );
    let p = problem(fx.bottle(&yaml));
    // Entries are four lines long; the third starts on frontmatter line 10, file line 11.
    assert_problem(
        &p,
        &fx.bottle_path(),
        11,
        &[
            "git[2].Name",
            "repository name `app` is used by git[0] and git[2]",
            "hint:",
        ],
    );
}

#[test]
fn an_extra_host_with_two_addresses_across_entries_is_refused() {
    let fx = Fixture::new();
    let yaml = format!(
        "git:\n{}    ExtraHosts:\n      git.internal: 10.0.0.1\n{}    ExtraHosts:\n      \
         git.internal: 10.0.0.2\n",
        git_entry(&fx, "app"),
        git_entry(&fx, "lib")
    );
    let p = problem(fx.bottle(&yaml));
    assert_problem(
        &p,
        &fx.bottle_path(),
        14,
        &[
            "`git.internal`",
            "10.0.0.1 in git[0]",
            "10.0.0.2 in git[1]",
            "same IP",
        ],
    );
}

#[test]
fn the_same_address_in_several_entries_is_fine() {
    let fx = Fixture::new();
    let yaml = format!(
        "git:\n{}    ExtraHosts: {{git.internal: 10.0.0.1}}\n{}    ExtraHosts:\n      \
         git.internal: 10.0.0.1\n      other.internal: \"::1\"\n",
        git_entry(&fx, "app"),
        git_entry(&fx, "lib")
    );
    let bottle = fx.bottle(&yaml).unwrap();
    assert_eq!(bottle.git[1].extra_hosts.len(), 2);
    assert_eq!(
        bottle.git[1].extra_hosts["other.internal"].to_string(),
        "::1"
    );
}

#[test]
fn an_extra_host_given_twice_in_one_map_names_both_addresses() {
    let fx = Fixture::new();
    let yaml = format!(
        "git:\n{}    ExtraHosts:\n      git.internal: 10.0.0.1\n      git.internal: 10.0.0.9\n",
        git_entry(&fx, "app")
    );
    let p = problem(fx.bottle(&yaml));
    assert_problem(
        &p,
        &fx.bottle_path(),
        9,
        &[
            "`git.internal` is listed twice in git[0].ExtraHosts",
            "10.0.0.1",
            "10.0.0.9",
        ],
    );
}

#[test]
fn extra_hosts_need_ip_addresses_and_host_names() {
    let fx = Fixture::new();
    let yaml = format!(
        "git:\n{}    ExtraHosts:\n      git.internal: gateway\n",
        git_entry(&fx, "app")
    );
    let p = problem(fx.bottle(&yaml));
    assert_problem(
        &p,
        &fx.bottle_path(),
        8,
        &["`gateway` is not an IP address"],
    );
    let yaml = format!(
        "git:\n{}    ExtraHosts:\n      \"bad host\": 10.0.0.1\n",
        git_entry(&fx, "app")
    );
    let p = problem(fx.bottle(&yaml));
    assert_problem(&p, &fx.bottle_path(), 8, &["not a valid host name"]);
}

#[test]
fn a_missing_identity_file_key_is_reported() {
    let fx = Fixture::new();
    let entry = git_entry(&fx, "app").replace("    IdentityFile: ~/.ssh/id_test\n", "");
    let p = problem(fx.bottle(&format!("git:\n{entry}")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        3,
        &[
            "git[0]: missing key `IdentityFile`",
            "hint: add `IdentityFile: ~/.ssh/",
        ],
    );
}

#[test]
fn an_identity_file_that_does_not_exist_is_reported_with_its_path() {
    let fx = Fixture::new();
    let yaml = format!(
        "git:\n{}{}",
        git_entry(&fx, "app"),
        git_entry(&fx, "lib").replace("~/.ssh/id_test", "~/.ssh/missing_key")
    );
    let p = problem(fx.bottle(&yaml));
    let resolved = fx.user_home.join(".ssh/missing_key");
    assert_problem(
        &p,
        &fx.bottle_path(),
        9,
        &[
            "git[1].IdentityFile",
            "`~/.ssh/missing_key` does not exist",
            &resolved.display().to_string(),
            "ssh-keygen",
        ],
    );
}

#[test]
fn identity_files_resolve_relative_and_absolute_paths() {
    let fx = Fixture::new();
    let key = fx.home.join("bottles/keys/app");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, "key").unwrap();
    let entry = git_entry(&fx, "app").replace("~/.ssh/id_test", "keys/app");
    let bottle = fx.bottle(&format!("git:\n{entry}")).unwrap();
    assert_eq!(bottle.git[0].identity_file, key);
    let absolute = fx.user_file("abs_key");
    let entry = git_entry(&fx, "app").replace("~/.ssh/id_test", &absolute.display().to_string());
    let bottle = fx.bottle(&format!("git:\n{entry}")).unwrap();
    assert_eq!(bottle.git[0].identity_file, absolute);
}

#[test]
fn bad_upstreams_show_the_expected_form() {
    let fx = Fixture::new();
    for (upstream, expected) in [
        ("https://github.com/org/app.git", "only speaks SSH"),
        ("ssh://github.com/org/app.git", "no user"),
        ("ssh://git@github.com", "no path"),
        (
            "ssh://git@github.com:99999/org/app.git",
            "not a port number",
        ),
        ("github.com/org/app", "ssh://user@host[:port]/path"),
    ] {
        let entry = git_entry(&fx, "app").replace("ssh://git@github.com/org/app.git", upstream);
        let p = problem(fx.bottle(&format!("git:\n{entry}")));
        assert_problem(
            &p,
            &fx.bottle_path(),
            4,
            &["git[0].Upstream", upstream, expected],
        );
        assert!(p.hint.as_deref().unwrap().contains("ssh://"), "{p}");
    }
}

#[test]
fn scp_style_upstreams_get_the_ssh_equivalent() {
    let fx = Fixture::new();
    let entry = git_entry(&fx, "app").replace(
        "ssh://git@github.com/org/app.git",
        "git@github.com:org/app.git",
    );
    let p = problem(fx.bottle(&format!("git:\n{entry}")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        4,
        &["`ssh://git@github.com/org/app.git`"],
    );
}

#[test]
fn host_keys_are_checked() {
    let fx = Fixture::new();
    for (key, expected) in [
        ("ssh-ed25519", "base64 key is missing"),
        ("ssh-ed25519 not*base64", "not valid base64"),
        (
            "ecdsa-sha2-nistp256 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
            "not a `ecdsa-sha2-nistp256` key",
        ),
        ("rsa AAAA", "not an SSH key type"),
    ] {
        let entry = git_entry(&fx, "app").replace(GITHUB_KEY, key);
        let p = problem(fx.bottle(&format!("git:\n{entry}")));
        assert_problem(
            &p,
            &fx.bottle_path(),
            6,
            &["git[0].KnownHostKey", expected, "ssh-keyscan"],
        );
    }
    let entry = git_entry(&fx, "app").replace(GITHUB_KEY, &format!("github.com {GITHUB_KEY}"));
    let p = problem(fx.bottle(&format!("git:\n{entry}")));
    assert!(
        p.hint.as_deref().unwrap().contains("drop the host name"),
        "{p}"
    );
}

#[test]
fn names_are_checked() {
    let fx = Fixture::new();
    let entry = git_entry(&fx, "app").replace("Name: app", "Name: my/app");
    let p = problem(fx.bottle(&format!("git:\n{entry}")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        3,
        &["`my/app` is not a valid repository name"],
    );
    let entry = git_entry(&fx, "app").replace("  - Name: app\n    Upstream", "  - Upstream");
    let p = problem(fx.bottle(&format!("git:\n{entry}")));
    assert!(p.message.contains("missing key `Name`"), "{p}");
}

#[test]
fn gate_settings_default_to_the_safe_side() {
    let fx = Fixture::new();
    let bottle = fx
        .bottle(&format!("git:\n{}", git_entry(&fx, "app")))
        .unwrap();
    let repo = &bottle.git[0];
    assert!(repo.protected.is_empty() && repo.allowed_refs.is_empty());
    assert!(!repo.allow_force_push && !repo.allow_delete && !repo.allow_ci_changes);
    let allowed = git_entry(&fx, "app") + "    allow_ci_changes: true\n";
    let bottle = fx.bottle(&format!("git:\n{allowed}")).unwrap();
    assert!(bottle.git[0].allow_ci_changes, "allow_ci_changes is read");
    let entry = git_entry(&fx, "app") + "    allow_ci_changes: yes please\n";
    let p = problem(fx.bottle(&format!("git:\n{entry}")));
    assert_problem(&p, &fx.bottle_path(), 7, &["expected a boolean"]);
    let entry = git_entry(&fx, "app") + "    protected: [\"has space\"]\n";
    let p = problem(fx.bottle(&format!("git:\n{entry}")));
    assert_problem(
        &p,
        &fx.bottle_path(),
        7,
        &["git[0].protected[0]", "not a valid ref glob"],
    );
    let entry = git_entry(&fx, "app") + "    allow_delete: sometimes\n";
    let p = problem(fx.bottle(&format!("git:\n{entry}")));
    assert_problem(&p, &fx.bottle_path(), 7, &["expected a boolean"]);
}
