//! Configuration reloads: a good one takes effect, a bad one changes nothing.

use crate::harness::*;

#[tokio::test]
async fn good_config_takes_effect() {
    let h = start(|_| {}).await;
    let (url, authority) = h.http_url("new.test", "/");
    assert_eq!(h.get(&url, &authority, "").await.status, 403);
    let mut config = h.config.clone();
    config.allow.push("new.test".into());
    config.allow.retain(|a| a != "api.test");
    let path = h.dir.path().join("new.yaml");
    std::fs::write(&path, yaml_serde::to_string(&config).unwrap()).unwrap();
    h.handle.reload_from(&path).expect("reload");
    assert_eq!(h.get(&url, &authority, "").await.status, 200);
    let (url, authority) = h.http_url("api.test", "/");
    assert_eq!(h.get(&url, &authority, "").await.status, 403);
}

#[tokio::test]
async fn bad_config_keeps_the_old_one() {
    let h = start(|_| {}).await;
    let (url, authority) = h.http_url("api.test", "/");
    let path = h.dir.path().join("bad.yaml");
    let mut bad = h.config.clone();
    bad.allow = vec!["new.test".into()];
    bad.ssrf.allow_cidrs.push("10.0.0.0/99".into());
    for text in [
        "this: is: not: yaml".to_string(),
        "version: 1\n".to_string(),
        yaml_serde::to_string(&bad).unwrap(),
    ] {
        std::fs::write(&path, text).unwrap();
        let err = h.handle.reload_from(&path).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
    // A route whose token variable is unset, and a missing CA file.
    let mut missing = h.config.clone();
    missing.routes[0].auth.as_mut().unwrap().token_env = "UNSET_TOKEN".into();
    assert!(
        h.handle
            .reload(&missing)
            .unwrap_err()
            .to_string()
            .contains("UNSET_TOKEN")
    );
    let mut no_ca = h.config.clone();
    no_ca.tls.ca_cert = "/nonexistent/ca.pem".into();
    assert!(h.handle.reload(&no_ca).is_err());
    // Still the old policy.
    assert_eq!(h.get(&url, &authority, "").await.status, 200);
    let (url, authority) = h.http_url("new.test", "/");
    assert_eq!(h.get(&url, &authority, "").await.status, 403);
}
