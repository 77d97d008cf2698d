//! The sandbox plugins run in: a wasmtime engine with no capabilities, hard limits per call, and a
//! cache of precompiled components.
//!
//! What a plugin gets: WASI with nothing granted (no preopened directories, no environment, no
//! arguments, no sockets, no name lookup, stdio closed) and the `host.log` import. What bounds it:
//! a size cap and a compile deadline when a component is loaded, an epoch deadline and a fuel
//! budget per call, a memory cap and counts of instances, memories, tables and table elements per
//! store, a cap on the bytes one call returns, and the host's validation of everything it returns.
//! Every failure is a [`PluginError`] that names the plugin.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::bottle::plugin::host::{Host as LogHost, LogLevel};
use super::bindings::bottle::plugin::types::{Diagnostic, Host as TypesHost};
use super::bindings::exports::bottle::plugin::sidecar::{
    Contribution, Facts, Finalization, PlanContext, PluginInfo,
};
use super::bindings::policy::exports::bottle::plugin::policy::Violation;
use super::bindings::policy::{PolicyModule, PolicyModulePre};
use super::bindings::{SERVED_VERSIONS, SidecarPlugin, SidecarPluginPre};
use super::returned::ReturnedBytes;

/// How often the epoch ticks; deadlines are whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Log lines one plugin may write per call before the rest are dropped.
const MAX_LOG_LINES: u32 = 200;
/// Bytes of a plugin's stderr kept for crash reports.
const STDERR_CAPTURE: usize = 4096;
/// Longest log line kept.
const MAX_LOG_LINE: usize = 2048;

/// Bounds on every plugin call.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeLimits {
    /// Linear memory an instance may grow to.
    pub memory_bytes: usize,
    /// Wall-clock time one call (describe, plan, finalize) may take.
    pub call_deadline: Duration,
    /// Fuel (roughly, wasm instructions) one call may burn; a second bound besides the clock,
    /// independent of how busy the machine is.
    pub call_fuel: u64,
    /// Core instances one plugin's store may create (a Rust component needs a handful).
    pub instances: usize,
    /// Linear memories one store may create.
    pub memories: usize,
    /// Tables one store may create.
    pub tables: usize,
    /// Elements any one table may grow to.
    pub table_elements: usize,
    /// Bytes one call may return (strings, lists, file contents): past it the call is refused.
    pub returned_bytes: usize,
    /// Size of a component file the host will compile.
    pub component_bytes: usize,
    /// Wall-clock time compiling one component may take.
    pub compile_deadline: Duration,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        RuntimeLimits {
            memory_bytes: 64 << 20,
            call_deadline: Duration::from_millis(500),
            call_fuel: 2_000_000_000,
            instances: 32,
            memories: 8,
            tables: 16,
            table_elements: 100_000,
            returned_bytes: 16 << 20,
            component_bytes: 64 << 20,
            compile_deadline: Duration::from_secs(60),
        }
    }
}

/// A failure of a plugin, always naming it.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{plugin}`: {kind}")]
pub struct PluginError {
    /// The plugin's name (or its file, before its name is known).
    pub plugin: String,
    /// What went wrong.
    pub kind: PluginErrorKind,
}

/// What went wrong with a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginErrorKind {
    /// The bytes are not a component this host can run.
    #[error("not a valid bottle plugin component: {0}")]
    Load(String),
    /// The component does not fit the `bottle:plugin` world.
    #[error("does not implement the bottle:plugin sidecar world this host serves: {0}")]
    Incompatible(String),
    /// The call ran past its deadline.
    #[error("did not return within its time limit of {0:?}; it was stopped")]
    Deadline(Duration),
    /// The call burnt its fuel budget.
    #[error("used up its fuel budget of {0} units in one call; it was stopped")]
    Fuel(u64),
    /// The component targets a package version this host does not serve.
    #[error(
        "targets bottle:plugin@{targets}, but this host serves {}; rebuild the plugin against \
         one of those (its SDK version decides), or upgrade bottle", serves.join(", ")
    )]
    Version {
        /// The version the component targets.
        targets: String,
        /// The versions this host serves.
        serves: Vec<String>,
    },
    /// The instance tried to grow its memory past the cap.
    #[error("tried to use more than its memory limit of {} MiB; it was stopped", .0 >> 20)]
    Memory(usize),
    /// The store went past its count of instances, memories or tables, or a table past its size.
    #[error(
        "needs more than its sandbox allows ({0}); a plugin may create {1} instances, {2} \
         memories, {3} tables of up to {4} elements; it was stopped"
    )]
    Footprint(String, usize, usize, usize, usize),
    /// One call returned more bytes than the host takes.
    #[error("returned {0} bytes from one call, more than the {mib} MiB a call may return", mib = .1 >> 20)]
    Returned(usize, usize),
    /// The component file is larger than the host compiles.
    #[error("the component is {0} bytes, more than the {1} bytes bottle compiles")]
    TooLarge(usize, usize),
    /// Compiling the component took longer than the host waits.
    #[error(
        "did not compile within {0:?}; it was abandoned (a component this slow to compile is \
         refused; check that it is the file you meant)"
    )]
    CompileDeadline(Duration),
    /// The guest trapped (panicked, hit `unreachable`, …).
    #[error("crashed: {0}")]
    Trap(String),
    /// The plugin's output broke a rule of the contract.
    #[error("returned an invalid contribution: {0}")]
    Invalid(String),
    /// The plugin reported errors about its input.
    #[error("rejected its configuration:\n{0}")]
    Rejected(String),
}

impl PluginError {
    /// A new error for `plugin`.
    pub fn new(plugin: &str, kind: PluginErrorKind) -> Self {
        PluginError {
            plugin: plugin.to_owned(),
            kind,
        }
    }
}

/// The engine and linker shared by every plugin of a run.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<PluginState>,
    policy_linker: Linker<PluginState>,
    cache_dir: Option<PathBuf>,
    limits: RuntimeLimits,
    ticker_stop: Arc<AtomicBool>,
}

/// A compiled plugin, ready to instantiate any number of times.
#[derive(Clone)]
pub struct CompiledPlugin {
    pre: SidecarPluginPre<PluginState>,
    /// Hex SHA-256 of the component's bytes.
    pub sha256: String,
    /// Whether it came from the precompiled cache.
    pub cached: bool,
    /// The `bottle:plugin` package version it targets.
    pub wit_version: String,
}

/// A compiled policy module.
#[derive(Clone)]
pub struct CompiledPolicy {
    pre: PolicyModulePre<PluginState>,
    /// Hex SHA-256 of the component's bytes.
    pub sha256: String,
    /// Whether it came from the precompiled cache.
    pub cached: bool,
}

impl PluginRuntime {
    /// A runtime caching precompiled components under `cache_dir` (no caching with `None`).
    pub fn new(cache_dir: Option<PathBuf>, limits: RuntimeLimits) -> anyhow::Result<Self> {
        Self::build(cache_dir, limits)
            .map_err(|e| anyhow::anyhow!("starting the plugin runtime: {e:#}"))
    }

    fn build(cache_dir: Option<PathBuf>, limits: RuntimeLimits) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.consume_fuel(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        SidecarPlugin::add_to_linker::<PluginState, wasmtime::component::HasSelf<PluginState>>(
            &mut linker,
            |state| state,
        )?;
        let mut policy_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut policy_linker)?;
        PolicyModule::add_to_linker::<PluginState, wasmtime::component::HasSelf<PluginState>>(
            &mut policy_linker,
            |state| state,
        )?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(&engine, ticker_stop.clone());
        Ok(PluginRuntime {
            engine,
            linker,
            policy_linker,
            cache_dir,
            limits,
            ticker_stop,
        })
    }

    /// Read a component file, refusing one larger than the size cap before reading it whole.
    pub fn read_component(&self, path: &Path) -> Result<Vec<u8>, PluginError> {
        use std::io::Read;
        let label = path.display().to_string();
        let cannot = |e: std::io::Error| {
            PluginError::new(&label, PluginErrorKind::Load(format!("cannot read: {e}")))
        };
        let cap = self.limits.component_bytes;
        let mut wasm = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(cap as u64 + 1).read_to_end(&mut wasm))
            .map_err(cannot)?;
        if wasm.len() > cap {
            let size = std::fs::metadata(path).map_or(wasm.len(), |m| m.len() as usize);
            return Err(PluginError::new(
                &label,
                PluginErrorKind::TooLarge(size, cap),
            ));
        }
        Ok(wasm)
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> RuntimeLimits {
        self.limits
    }

    /// Compile `wasm` (or load it from the cache) and link it against the sandbox. `label` names the
    /// plugin in errors until its own name is known.
    pub fn compile(&self, label: &str, wasm: &[u8]) -> Result<CompiledPlugin, PluginError> {
        let sha256 = hex::encode(Sha256::digest(wasm));
        let (component, cached) = self.load_component(label, wasm, &sha256)?;
        let wit_version = self.check_version(label, &component, "sidecar")?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::new(label, PluginErrorKind::Incompatible(root_cause(&e))))?;
        let pre = SidecarPluginPre::new(pre)
            .map_err(|e| PluginError::new(label, PluginErrorKind::Incompatible(root_cause(&e))))?;
        Ok(CompiledPlugin {
            pre,
            sha256,
            cached,
            wit_version,
        })
    }

    /// The package version `component` targets, refused unless this host serves it; `world_interface`
    /// is the interface the component must export (`sidecar` or `policy`).
    fn check_version(
        &self,
        label: &str,
        component: &Component,
        world_interface: &str,
    ) -> Result<String, PluginError> {
        let fail = |kind| PluginError::new(label, kind);
        match super::bindings::targeted_version(&self.engine, component) {
            None => Err(fail(PluginErrorKind::Incompatible(format!(
                "it exports no bottle:plugin interface; a plugin exports bottle:plugin/{world_interface}"
            )))),
            Some((_, version)) if !SERVED_VERSIONS.contains(&version.as_str()) => {
                Err(fail(PluginErrorKind::Version {
                    targets: version,
                    serves: SERVED_VERSIONS.iter().map(|v| v.to_string()).collect(),
                }))
            }
            Some((interface, _)) if interface != world_interface => {
                Err(fail(PluginErrorKind::Incompatible(format!(
                    "it exports bottle:plugin/{interface}, but this is loaded as a {world_interface} component"
                ))))
            }
            Some((_, version)) => Ok(version),
        }
    }

    /// Compile a policy module (or load it from the cache).
    pub fn compile_policy(&self, label: &str, wasm: &[u8]) -> Result<CompiledPolicy, PluginError> {
        let sha256 = hex::encode(Sha256::digest(wasm));
        let (component, cached) = self.load_component(label, wasm, &sha256)?;
        self.check_version(label, &component, "policy")?;
        let pre = self
            .policy_linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::new(label, PluginErrorKind::Incompatible(root_cause(&e))))?;
        let pre = PolicyModulePre::new(pre)
            .map_err(|e| PluginError::new(label, PluginErrorKind::Incompatible(root_cause(&e))))?;
        Ok(CompiledPolicy {
            pre,
            sha256,
            cached,
        })
    }

    /// Run a policy module's `name` and `check` over `plan_json` in a fresh instance.
    pub fn check_policy(
        &self,
        policy: &CompiledPolicy,
        label: &str,
        plan_json: &str,
    ) -> Result<(String, Vec<Violation>), PluginError> {
        let mut store = self.store(label);
        let bindings = policy
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(label, &store, e, self.limits))?;
        let name = bindings
            .bottle_plugin_policy()
            .call_name(&mut store)
            .map_err(|e| classify(label, &store, e, self.limits))?;
        store.set_epoch_deadline(self.deadline_ticks());
        store.set_fuel(self.limits.call_fuel).expect("fuel is on");
        let violations = bindings
            .bottle_plugin_policy()
            .call_check(&mut store, plan_json)
            .map_err(|e| classify(&name, &store, e, self.limits))?;
        let bytes = name.returned_bytes() + violations.returned_bytes();
        check_returned(&name, bytes, self.limits)?;
        Ok((name, violations))
    }

    fn store(&self, name: &str) -> Store<PluginState> {
        let mut store = Store::new(&self.engine, PluginState::new(name, self.limits));
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(self.deadline_ticks());
        store.epoch_deadline_trap();
        store.set_fuel(self.limits.call_fuel).expect("fuel is on");
        store
    }

    /// A fresh, isolated instance of `plugin`, attributed to `name` in logs and errors.
    pub fn instantiate(
        &self,
        plugin: &CompiledPlugin,
        name: &str,
    ) -> Result<PluginInstance, PluginError> {
        let mut store = self.store(name);
        let bindings = plugin
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(name, &store, e, self.limits))?;
        Ok(PluginInstance {
            store,
            bindings,
            name: name.to_owned(),
            limits: self.limits,
            deadline_ticks: self.deadline_ticks(),
        })
    }

    fn deadline_ticks(&self) -> u64 {
        (self.limits.call_deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }

    fn load_component(
        &self,
        label: &str,
        wasm: &[u8],
        sha256: &str,
    ) -> Result<(Component, bool), PluginError> {
        if wasm.len() > self.limits.component_bytes {
            return Err(PluginError::new(
                label,
                PluginErrorKind::TooLarge(wasm.len(), self.limits.component_bytes),
            ));
        }
        let cached_path = self.cache_path(sha256);
        if let Some(path) = &cached_path
            && path.exists()
        {
            // SAFETY: the file is in the user's private cache directory and was written by
            // `Engine::precompile_component` of an engine with the same compatibility hash (the
            // directory name); a corrupt file fails to deserialize and is rebuilt below.
            match unsafe { Component::deserialize_file(&self.engine, path) } {
                Ok(component) => return Ok((component, true)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "rebuilding cached plugin: {e}")
                }
            }
        }
        let compiled = self.precompile_within_deadline(label, wasm)?;
        if let Some(path) = &cached_path
            && let Err(e) = write_cache_file(path, &compiled)
        {
            tracing::warn!(path = %path.display(), "could not cache compiled plugin: {e}");
        }
        // SAFETY: `compiled` was produced just now by this engine.
        let component = unsafe { Component::deserialize(&self.engine, &compiled) }
            .map_err(|e| PluginError::new(label, PluginErrorKind::Load(root_cause(&e))))?;
        Ok((component, false))
    }

    /// Compile on a thread and wait at most the compile deadline. Cranelift cannot be interrupted,
    /// so a compile past the deadline is abandoned: its thread finishes on its own and its result
    /// is dropped, never cached.
    fn precompile_within_deadline(&self, label: &str, wasm: &[u8]) -> Result<Vec<u8>, PluginError> {
        let (engine, wasm) = (self.engine.clone(), wasm.to_vec());
        let (done, result) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("plugin-compile".into())
            .spawn(move || {
                let _ = done.send(
                    engine
                        .precompile_component(&wasm)
                        .map_err(|e| root_cause(&e)),
                );
            })
            .map_err(|e| {
                PluginError::new(label, PluginErrorKind::Load(format!("cannot compile: {e}")))
            })?;
        match result.recv_timeout(self.limits.compile_deadline) {
            Ok(compiled) => compiled.map_err(|e| PluginError::new(label, PluginErrorKind::Load(e))),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(PluginError::new(
                label,
                PluginErrorKind::CompileDeadline(self.limits.compile_deadline),
            )),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(PluginError::new(
                label,
                PluginErrorKind::Load("the compiler stopped without a result".into()),
            )),
        }
    }

    /// `<cache>/wasmtime-<version>-<engine compatibility hash>/<sha256>.cwasm`.
    fn cache_path(&self, sha256: &str) -> Option<PathBuf> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        let dir = format!("wasmtime-{}-{:016x}", WASMTIME_VERSION, hasher.finish());
        Some(
            self.cache_dir
                .as_ref()?
                .join(dir)
                .join(format!("{sha256}.cwasm")),
        )
    }
}

impl Drop for PluginRuntime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// The wasmtime release this host embeds, part of the cache key.
pub const WASMTIME_VERSION: &str = "48";

fn spawn_epoch_ticker(engine: &Engine, stop: Arc<AtomicBool>) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("spawn the plugin epoch thread");
}

/// Refuse a call's value when it is larger than a call may return.
fn check_returned(name: &str, bytes: usize, limits: RuntimeLimits) -> Result<(), PluginError> {
    if bytes > limits.returned_bytes {
        return Err(PluginError::new(
            name,
            PluginErrorKind::Returned(bytes, limits.returned_bytes),
        ));
    }
    Ok(())
}

fn write_cache_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache files live in a directory");
    std::fs::create_dir_all(dir)?;
    bottle_atomic_file::replace(path, bytes, 0o644)
}

/// The trap's first line and what the plugin wrote to stderr (a Rust panic message lands there).
fn crash_report(e: &wasmtime::Error, stderr: &MemoryOutputPipe) -> String {
    let trap = e
        .downcast_ref::<Trap>()
        .map_or_else(|| format!("{e}"), |t| t.to_string());
    let said = String::from_utf8_lossy(&stderr.contents())
        .trim()
        .to_owned();
    if said.is_empty() {
        trap
    } else {
        format!("{trap}; it said: {said}")
    }
}

fn root_cause(e: &wasmtime::Error) -> String {
    format!("{e:#}")
}

/// Turn a wasmtime error into the plugin error a user can act on.
fn classify(
    name: &str,
    store: &Store<PluginState>,
    e: wasmtime::Error,
    limits: RuntimeLimits,
) -> PluginError {
    let kind = if store.data().limiter.denied {
        PluginErrorKind::Memory(limits.memory_bytes)
    } else if let Some(what) = footprint_exceeded(&e, store.data().limiter.table_denied) {
        PluginErrorKind::Footprint(
            what,
            limits.instances,
            limits.memories,
            limits.tables,
            limits.table_elements,
        )
    } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        PluginErrorKind::Deadline(limits.call_deadline)
    } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::OutOfFuel)) {
        PluginErrorKind::Fuel(limits.call_fuel)
    } else {
        PluginErrorKind::Trap(crash_report(&e, &store.data().stderr))
    };
    PluginError::new(name, kind)
}

/// What went past the store's counts: wasmtime's own words for instances, memories and tables
/// (it has no typed error for them), or a table grown too far.
fn footprint_exceeded(e: &wasmtime::Error, table_denied: bool) -> Option<String> {
    if table_denied {
        return Some("a table grew past its element limit".into());
    }
    let text = format!("{e:#}");
    let start = text.find("resource limit exceeded: ")?;
    let what = text[start..].lines().next().unwrap_or_default();
    Some(
        what.trim_start_matches("resource limit exceeded: ")
            .to_owned(),
    )
}

/// A live plugin instance. Calls run under the runtime's limits; each call gets a fresh deadline.
pub struct PluginInstance {
    store: Store<PluginState>,
    bindings: SidecarPlugin,
    name: String,
    limits: RuntimeLimits,
    deadline_ticks: u64,
}

impl PluginInstance {
    /// The name this instance is attributed to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Call `describe`.
    pub fn describe(&mut self) -> Result<PluginInfo, PluginError> {
        self.prepare_call();
        let result = self
            .bindings
            .bottle_plugin_sidecar()
            .call_describe(&mut self.store);
        self.finish(result)
    }

    /// Call `plan`.
    pub fn plan(
        &mut self,
        config: &str,
        context: &PlanContext,
    ) -> Result<Result<Option<Contribution>, Vec<Diagnostic>>, PluginError> {
        self.prepare_call();
        let result =
            self.bindings
                .bottle_plugin_sidecar()
                .call_plan(&mut self.store, config, context);
        self.finish(result)
    }

    /// Call `finalize`.
    pub fn finalize(
        &mut self,
        config: &str,
        context: &PlanContext,
        facts: &Facts,
    ) -> Result<Result<Finalization, Vec<Diagnostic>>, PluginError> {
        self.prepare_call();
        let result = self.bindings.bottle_plugin_sidecar().call_finalize(
            &mut self.store,
            config,
            context,
            facts,
        );
        self.finish(result)
    }

    fn prepare_call(&mut self) {
        self.store.set_epoch_deadline(self.deadline_ticks);
        self.store
            .set_fuel(self.limits.call_fuel)
            .expect("fuel is on");
        self.store.data_mut().log_lines = 0;
    }

    fn finish<T: ReturnedBytes>(&mut self, result: wasmtime::Result<T>) -> Result<T, PluginError> {
        let value = result.map_err(|e| classify(&self.name, &self.store, e, self.limits))?;
        check_returned(&self.name, value.returned_bytes(), self.limits)?;
        Ok(value)
    }
}

/// Per-instance host state.
pub struct PluginState {
    name: String,
    wasi: WasiCtx,
    stderr: MemoryOutputPipe,
    table: ResourceTable,
    limiter: MemoryCap,
    log_lines: u32,
}

impl PluginState {
    fn new(name: &str, limits: RuntimeLimits) -> Self {
        // Nothing is granted: the builder's defaults are closed stdio, no env, no args, no
        // preopens; sockets and name lookup are switched off explicitly. stderr goes to a small
        // buffer so that a panic message can be shown when the plugin crashes.
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        PluginState {
            name: name.to_owned(),
            wasi,
            stderr,
            table: ResourceTable::new(),
            limiter: MemoryCap {
                max: limits.memory_bytes,
                denied: false,
                limits,
                table_denied: false,
            },
            log_lines: 0,
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl TypesHost for PluginState {}

impl super::bindings::policy::bottle::plugin::types::Host for PluginState {}

impl super::bindings::policy::bottle::plugin::host::Host for PluginState {
    fn log(
        &mut self,
        level: super::bindings::policy::bottle::plugin::host::LogLevel,
        message: String,
    ) {
        use super::bindings::policy::bottle::plugin::host::LogLevel as L;
        let level = match level {
            L::Trace => LogLevel::Trace,
            L::Debug => LogLevel::Debug,
            L::Info => LogLevel::Info,
            L::Warn => LogLevel::Warn,
            L::Error => LogLevel::Error,
        };
        LogHost::log(self, level, message);
    }
}

impl LogHost for PluginState {
    fn log(&mut self, level: LogLevel, message: String) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            return;
        }
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let plugin = self.name.as_str();
        match level {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// The store's limits (wasmtime's `StoreLimits`, with memory) that remember they said no, so the
/// resulting trap is reported as a memory or table blow-up.
struct MemoryCap {
    max: usize,
    denied: bool,
    limits: RuntimeLimits,
    table_denied: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max;
        self.denied |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limits.table_elements;
        self.table_denied |= !allowed;
        Ok(allowed)
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn memories(&self) -> usize {
        self.limits.memories
    }

    fn tables(&self) -> usize {
        self.limits.tables
    }
}
