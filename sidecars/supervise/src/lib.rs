//! bottle's supervise sidecar: an MCP server the agent calls when its bottle stops it.
//!
//! Each `-block` tool call is checked, written into the queue directory as a proposal
//! ([`bottle_supervise_queue::Queue::submit`]) and then **waits** — polling every 200 ms for
//! the operator's decision file — before it answers `{"status": …, "notes": …}`. While it waits
//! the response stays open with an SSE keep-alive comment every 15 s. A call that fails a check
//! is answered at once with an error saying what to fix, and writes nothing to the queue.
//!
//! | Tool | Arguments | Proposes |
//! | --- | --- | --- |
//! | `egress-proxy-block` | `justification`, `routes` (the whole new set) | `Change::Routes` |
//! | `firewall-block` | `justification`, `url` (the blocked URL) | `Change::AllowHost` |
//! | `capability-block` | `justification`, `dockerfile` (the whole new one) | `Change::Dockerfile` |
//! | `git-rule-block` | `justification`, `repo`, `policy` (the whole new one) | `Change::GitRule` |
//! | `list-egress-routes` | none | nothing: returns `current.json` at once |
//!
//! The checks ([`tools`]): exactly the fields of the tool's schema; [`Proposal::check`]; and,
//! against the `current.json` the host publishes, a tool the bottle cannot act on (when its
//! `tools` list is not empty), a `repo` that is not a git entry, a host already allowed, or a
//! proposal equal to what is in force.
//!
//! [`Proposal::check`]: bottle_supervise_queue::Proposal::check
//!
//! # The HTTP exchange
//!
//! MCP over streamable HTTP in **stateless** mode, at `POST /mcp` (and `GET /healthz` → `200 ok`).
//! There is no session: no `Mcp-Session-Id` header is issued or needed, `initialize` and
//! `notifications/initialized` are accepted but optional, and every POST stands alone. Every POST
//! needs `Content-Type: application/json` and `Accept: application/json, text/event-stream`
//! (otherwise `415` / `406`). A request is answered `200` with `Content-Type: text/event-stream`
//! carrying one `data: <JSON-RPC response>` event, then the response ends; a notification is
//! answered `202` with no body. With curl, from the agent's container:
//!
//! ```sh
//! mcp() { curl -sS -N http://supervise:7411/mcp -H 'Content-Type: application/json' \
//!           -H 'Accept: application/json, text/event-stream' -d "$1"; }
//!
//! # optional handshake
//! mcp '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",
//!       "capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}'
//! # data: {"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18",
//! #        "capabilities":{"tools":{}},"serverInfo":{"name":"bottle-supervise",…},…}}
//! mcp '{"jsonrpc":"2.0","method":"notifications/initialized"}'          # 202, empty
//!
//! mcp '{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
//! # data: {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"egress-proxy-block",…},…]}}
//!
//! mcp '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"firewall-block",
//!       "arguments":{"justification":"pip install needs it","url":"https://pypi.org/simple/"}}}'
//! # … blocks; while waiting the body carries a `:` comment line every 15 s …
//! # data: {"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text",
//! #        "text":"{\"notes\":\"use the mirror\",\"status\":\"rejected\"}"}],
//! #        "structuredContent":{"notes":"use the mirror","status":"rejected"},"isError":false}}
//!
//! mcp '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"list-egress-routes",
//!       "arguments":{}}}'
//! # data: {…,"result":{"content":[…],"structuredContent":{"allow":[…],"git":[…],
//! #        "routes":[…],"tools":[…]},"isError":false}}
//! ```
//!
//! A refused call is still a `200` with a result, `"isError":true` and the reason as text:
//! `firewall-block: nothing was queued: invalid arguments: missing field `justification`; …`.
//! An unknown tool name is a JSON-RPC error (`-32602`, invalid params) naming the tools.
//! `GET /mcp` is `405` (no standalone event stream). If the client disconnects while a call
//! waits, its proposal is withdrawn (removed from the queue unless already decided): no one would
//! receive the decision. At most 20 proposals (1 MiB together) wait per bottle; a call past that is
//! refused at once, asking the agent to wait for decisions. On SIGTERM/SIGINT waiting calls answer
//! `{"status":"expired",…}` before the server stops.
//!
//! The sidecar normally starts as root and at once becomes the owner of the queue directory
//! ([`privileges`]), so what it writes stays the host user's; when that owner is root it hands the
//! queue to uid 65532 and becomes that. It never serves as root: it refuses to start if it cannot
//! drop root or could regain it.

#![warn(missing_docs)]

pub mod privileges;
mod server;
pub mod tools;

pub use privileges::{PrivilegeError, drop_root};
pub use server::{
    HEALTH_PATH, MAX_REQUEST_BYTES, MCP_PATH, Options, ServeError, Supervise, router, serve,
    serve_on,
};
