//! Organisation policy modules: components of the `policy-module` world, found in
//! `$BOTTLE_POLICY_DIR` or `~/.bottle/policy/`, run over a read-only view of the finished plan
//! before anything is launched.
