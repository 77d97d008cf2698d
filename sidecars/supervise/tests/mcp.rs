//! The server in-process on 127.0.0.1:0 with a temporary queue, spoken to in raw HTTP/1.1 and
//! JSON-RPC exactly as a plain client (curl) would.

use std::net::SocketAddr;
use std::time::Duration;

use bottle_egress_config::{AuthScheme, Route, RouteAuth};
use bottle_git_gate_config::Policy;
use bottle_supervise::{Options, serve_on};
use bottle_supervise_queue::{
    Change, CurrentConfig, Decision, GitEntry, Limits, Proposal, Queue, Status, Tool,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Server {
    addr: SocketAddr,
    queue: Queue,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start_with(keep_alive: Duration) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::at(dir.path().join("queue"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let options = Options {
        keep_alive,
        shutdown: shutdown.clone(),
        ..Options::default()
    };
    let task = tokio::spawn({
        let queue = queue.clone();
        async move { serve_on(listener, queue, options).await.unwrap() }
    });
    Server {
        addr,
        queue,
        shutdown,
        task,
        _dir: dir,
    }
}

async fn start() -> Server {
    start_with(Duration::from_secs(15)).await
}

/// A bottle with an egress proxy, a firewall and one git entry, as the host would publish it.
fn current() -> CurrentConfig {
    CurrentConfig {
        routes: vec![Route {
            host: "api.github.com".into(),
            path_allowlist: vec!["/repos/acme/".into()],
            methods: vec![],
            auth: Some(RouteAuth {
                scheme: AuthScheme::Bearer,
                token_env: "GITHUB_TOKEN".into(),
            }),
        }],
        allow: vec!["*.github.com".into(), "pypi.org".into()],
        git: vec![GitEntry {
            name: "app".into(),
            policy: Policy {
                protected: vec!["main".into()],
                ..Policy::default()
            },
        }],
        tools: vec![
            Tool::EgressProxyBlock,
            Tool::FirewallBlock,
            Tool::CapabilityBlock,
            Tool::GitRuleBlock,
        ],
    }
}

/// One request on a fresh connection; the response with its body still streaming.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    accept: &str,
    body: &str,
) -> hyper::Response<Incoming> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "supervise:7411")
        .header("content-type", "application/json")
        .header("accept", accept)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    sender.send_request(request).await.unwrap()
}

const ACCEPT: &str = "application/json, text/event-stream";

/// POST a JSON-RPC message to /mcp and read the whole body.
async fn post(addr: SocketAddr, message: &Value) -> (hyper::StatusCode, hyper::HeaderMap, String) {
    let response = send(addr, "POST", "/mcp", ACCEPT, &message.to_string()).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

/// The JSON of every `data:` line of an SSE body.
fn events(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// Send a JSON-RPC request and return its one response message.
async fn rpc(addr: SocketAddr, id: u64, method: &str, params: Value) -> Value {
    let (status, headers, body) = post(
        addr,
        &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "text/event-stream");
    let mut messages = events(&body);
    assert_eq!(messages.len(), 1, "{body}");
    let message = messages.remove(0);
    assert_eq!(message["id"], id);
    message
}

async fn call(addr: SocketAddr, tool: &str, arguments: Value) -> Value {
    let message = rpc(
        addr,
        7,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
    .await;
    message["result"].clone()
}

/// The text of a tool result's single content block.
fn text(result: &Value) -> String {
    assert_eq!(result["content"].as_array().unwrap().len(), 1, "{result}");
    result["content"][0]["text"].as_str().unwrap().to_owned()
}

/// Wait for the one pending proposal of the queue.
async fn pending_proposal(queue: &Queue) -> Proposal {
    for _ in 0..100 {
        let pending = queue.pending().unwrap();
        if let [one] = &pending[..] {
            return one.clone();
        }
        assert!(pending.len() < 2, "{pending:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no proposal was queued");
}

fn decision(id: &str, status: Status, notes: &str) -> Decision {
    Decision {
        id: id.into(),
        status,
        notes: notes.into(),
        decided_at: "2026-01-01T00:00:00Z".into(),
        applied: None,
    }
}

#[tokio::test]
async fn health_initialize_and_tools_list() {
    let server = start().await;
    let health = send(server.addr, "GET", "/healthz", "*/*", "").await;
    assert_eq!(health.status(), 200);

    let (status, headers, body) = post(
        server.addr,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "curl", "version": "0"}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers.get("mcp-session-id").is_none(),
        "stateless: no session"
    );
    let init = &events(&body)[0]["result"];
    assert_eq!(init["serverInfo"]["name"], "bottle-supervise");
    assert_eq!(init["protocolVersion"], "2025-06-18");
    assert!(init["capabilities"]["tools"].is_object(), "{init}");

    let (status, _, body) = post(
        server.addr,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");

    let list = rpc(server.addr, 2, "tools/list", json!({})).await;
    let tools = list["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "egress-proxy-block",
            "firewall-block",
            "capability-block",
            "git-rule-block",
            "list-egress-routes"
        ]
    );
    for tool in &tools[..4] {
        let description = tool["description"].as_str().unwrap();
        assert!(
            description.contains("BLOCKS until a human"),
            "{description}"
        );
        assert!(
            description.contains("shown to the operator"),
            "{description}"
        );
        let schema = &tool["inputSchema"];
        assert_eq!(schema["additionalProperties"], false, "{schema}");
        assert!(
            schema["required"]
                .as_array()
                .unwrap()
                .contains(&json!("justification")),
            "{schema}"
        );
        assert_eq!(tool["outputSchema"]["required"], json!(["status", "notes"]));
    }
    let routes = &tools[0]["inputSchema"]["properties"]["routes"]["items"];
    assert_eq!(routes["additionalProperties"], false);
    assert_eq!(tools[4]["annotations"]["readOnlyHint"], true);
    assert!(server.queue.pending().unwrap().is_empty());
}

#[tokio::test]
async fn firewall_block_waits_for_the_rejection() {
    let server = start().await;
    server.queue.publish_current(&current()).unwrap();
    let addr = server.addr;
    let waiting = tokio::spawn(async move {
        call(
            addr,
            "firewall-block",
            json!({"justification": "pip install needs the index", "url": "https://PyPI.io/simple/x"}),
        )
        .await
    });
    let proposal = pending_proposal(&server.queue).await;
    assert_eq!(proposal.tool, Tool::FirewallBlock);
    assert_eq!(proposal.justification, "pip install needs the index");
    assert_eq!(
        proposal.change,
        Change::AllowHost {
            url: "https://PyPI.io/simple/x".into(),
            host: "pypi.io".into()
        }
    );
    // It really waits: several poll intervals pass without an answer.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!waiting.is_finished(), "returned before a decision");

    server
        .queue
        .decide(&decision(&proposal.id, Status::Rejected, "use the mirror"))
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the decision is returned")
        .unwrap();
    assert_eq!(result["isError"], false, "{result}");
    let expected = json!({"status": "rejected", "notes": "use the mirror"});
    assert_eq!(result["structuredContent"], expected);
    assert_eq!(
        serde_json::from_str::<Value>(&text(&result)).unwrap(),
        expected
    );
}

#[tokio::test]
async fn egress_proxy_block_approved() {
    let server = start().await;
    server.queue.publish_current(&current()).unwrap();
    let routes = json!([
        {"host": "api.github.com", "path_allowlist": ["/repos/acme/", "/user"],
         "auth": {"scheme": "Bearer", "token_env": "GITHUB_TOKEN"}},
        {"host": "registry.npmjs.org"}
    ]);
    let addr = server.addr;
    let waiting = tokio::spawn({
        let routes = routes.clone();
        async move {
            call(
                addr,
                "egress-proxy-block",
                json!({"justification": "gh api /user is refused", "routes": routes}),
            )
            .await
        }
    });
    let proposal = pending_proposal(&server.queue).await;
    let Change::Routes { routes: proposed } = &proposal.change else {
        panic!("{proposal:?}")
    };
    let sent: Vec<Route> = serde_json::from_value(routes).unwrap();
    assert_eq!(*proposed, sent);
    server
        .queue
        .decide(&decision(&proposal.id, Status::Approved, ""))
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        result["structuredContent"],
        json!({"status": "approved", "notes": ""})
    );
}

#[tokio::test]
async fn list_egress_routes_returns_the_published_config() {
    let server = start().await;
    let empty = call(server.addr, "list-egress-routes", json!({})).await;
    assert_eq!(
        empty["structuredContent"],
        json!({"routes": [], "allow": [], "git": [], "tools": []})
    );
    server.queue.publish_current(&current()).unwrap();
    let result = call(server.addr, "list-egress-routes", json!({})).await;
    assert_eq!(result["isError"], false);
    // As published, with each route's token named as the manifest names it (`token_ref`).
    let mut published = serde_json::to_value(current()).unwrap();
    let auth = published["routes"][0]["auth"].as_object_mut().unwrap();
    let token = auth.remove("token_env").unwrap();
    auth.insert("token_ref".into(), token);
    assert_eq!(result["structuredContent"], published);
    assert_eq!(
        serde_json::from_str::<Value>(&text(&result)).unwrap(),
        published
    );
    assert!(server.queue.pending().unwrap().is_empty());
}

#[tokio::test]
async fn bad_input_is_refused_and_queues_nothing() {
    let server = start().await;
    let mut published = current();
    server.queue.publish_current(&published).unwrap();
    let just = "needed";
    let cases = [
        (
            "firewall-block",
            json!({"justification": just, "url": "https://x.io", "urgent": true}),
            "unknown field `urgent`",
        ),
        (
            "firewall-block",
            json!({"url": "https://x.io"}),
            "missing field `justification`",
        ),
        (
            "firewall-block",
            json!({"justification": "  ", "url": "https://x.io"}),
            "justification: is empty",
        ),
        (
            "firewall-block",
            json!({"justification": just, "url": "x.io"}),
            "url: must start with http:// or https://",
        ),
        (
            "firewall-block",
            json!({"justification": just, "url": "https://api.github.com/repos"}),
            "already allowed (allowlist entry `*.github.com`)",
        ),
        (
            "egress-proxy-block",
            json!({"justification": just, "routes": [{"host": "https://api.x.com/"}]}),
            "routes[0].host: `https://api.x.com/` is not a host name",
        ),
        (
            "egress-proxy-block",
            json!({"justification": just, "routes": [{"host": "a.io", "methods": ["GET", "TRACE"]}]}),
            "routes[0].methods[1]: `TRACE` is never allowed on a route",
        ),
        (
            "egress-proxy-block",
            json!({"justification": just, "routes": [{"host": "a.io", "token": "x"}]}),
            "unknown field `token`",
        ),
        (
            "egress-proxy-block",
            json!({"justification": just, "routes": serde_json::to_value(&published.routes).unwrap()}),
            "exactly the current routes",
        ),
        (
            "capability-block",
            json!({"justification": just,
                   "dockerfile": format!("FROM debian\n{}", "#".repeat(Limits::DOCKERFILE))}),
            "the limit is 65536 bytes",
        ),
        (
            "capability-block",
            json!({"justification": just, "dockerfile": "RUN apt-get install gcc\n"}),
            "must start with a FROM instruction",
        ),
        (
            "git-rule-block",
            json!({"justification": just, "repo": "website", "policy": {"allow_force_push": true}}),
            "there is no git entry `website`; the git entries are app",
        ),
        (
            "git-rule-block",
            json!({"justification": just, "repo": "app", "policy": {"force": true}}),
            "unknown field `force`",
        ),
        (
            "list-egress-routes",
            json!({"verbose": true}),
            "unknown field `verbose`",
        ),
    ];
    for (tool, arguments, expected) in cases {
        let result = call(server.addr, tool, arguments.clone()).await;
        assert_eq!(result["isError"], true, "{tool} {arguments}: {result}");
        let message = text(&result);
        assert!(
            message.contains(expected),
            "{tool} {arguments}: `{message}` should say `{expected}`"
        );
        assert!(message.contains("nothing was queued"), "{message}");
    }

    // A bottle without a git gate.
    published.tools = vec![Tool::FirewallBlock];
    server.queue.publish_current(&published).unwrap();
    let result = call(
        server.addr,
        "git-rule-block",
        json!({"justification": just, "repo": "app", "policy": {}}),
    )
    .await;
    assert_eq!(result["isError"], true);
    assert!(
        text(&result).contains("this bottle lacks a git gate"),
        "{result}"
    );

    // An unknown tool is a protocol error naming the tools.
    let message = rpc(
        server.addr,
        9,
        "tools/call",
        json!({"name": "sudo", "arguments": {}}),
    )
    .await;
    assert_eq!(message["error"]["code"], -32602, "{message}");
    assert!(
        message["error"]["message"]
            .as_str()
            .unwrap()
            .contains("firewall-block"),
        "{message}"
    );

    assert!(server.queue.pending().unwrap().is_empty());
    assert!(
        !server.queue.root().join("proposals").exists(),
        "nothing was written"
    );
}

#[tokio::test]
async fn a_plain_client_needs_both_accept_types() {
    let server = start().await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    let response = send(server.addr, "POST", "/mcp", "application/json", &body).await;
    assert_eq!(response.status(), 406);
    let response = send(server.addr, "GET", "/mcp", "text/event-stream", "").await;
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn a_waiting_call_gets_keep_alive_comments() {
    let server = start_with(Duration::from_millis(100)).await;
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "capability-block",
        "arguments": {"justification": "needs gcc", "dockerfile": "FROM debian\nRUN apt-get install -y gcc\n"}}})
    .to_string();
    let response = send(server.addr, "POST", "/mcp", ACCEPT, &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(600);
    while let Ok(Some(frame)) = tokio::time::timeout_at(deadline, body.frame()).await {
        if let Ok(data) = frame.unwrap().into_data() {
            seen.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    let comments = seen.lines().filter(|l| l.starts_with(':')).count();
    assert!(comments >= 2, "keep-alive comments expected, got {seen:?}");
    assert!(
        events(&seen).is_empty(),
        "no answer before a decision: {seen:?}"
    );

    let proposal = pending_proposal(&server.queue).await;
    server
        .queue
        .decide(&decision(&proposal.id, Status::Modified, "pinned gcc-12"))
        .unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("the stream ends after the answer")
        .unwrap()
        .to_bytes();
    seen.push_str(std::str::from_utf8(&rest).unwrap());
    let answer = &events(&seen)[0];
    assert_eq!(
        answer["result"]["structuredContent"],
        json!({"status": "modified", "notes": "pinned gcc-12"})
    );
}

#[tokio::test]
async fn shutdown_answers_waiting_calls_with_expired() {
    let server = start().await;
    let addr = server.addr;
    let waiting = tokio::spawn(async move {
        call(
            addr,
            "capability-block",
            json!({"justification": "needs gcc", "dockerfile": "FROM debian\n"}),
        )
        .await
    });
    let proposal = pending_proposal(&server.queue).await;
    server.shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("answered on shutdown")
        .unwrap();
    assert_eq!(result["structuredContent"]["status"], "expired", "{result}");
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("the server stops")
        .unwrap();
    // The sidecar never decides: the proposal is left for the host.
    assert!(server.queue.decision(&proposal.id).unwrap().is_none());
}

/// A call's arguments with a given text put into one field.
type Arguments = Box<dyn Fn(&str) -> Value>;

/// A call whose arguments hold `bad` is refused at once, naming the field and the character as
/// an escape; the same call without it (the positive control) is queued and waits.
#[tokio::test]
async fn control_characters_are_refused_in_every_field() {
    let server = start().await;
    server.queue.publish_current(&current()).unwrap();
    let routes = |host: &str, path: &str, env: &str| {
        json!([{"host": host, "path_allowlist": [path],
                "auth": {"scheme": "Bearer", "token_env": env}}])
    };
    // (tool, arguments with `{}` where the character goes, the field named)
    let cases: Vec<(&str, Arguments, &str)> = vec![
        (
            "firewall-block",
            Box::new(|c| json!({"justification": format!("needs{c} it"), "url": "https://n.io/"})),
            "justification",
        ),
        (
            "firewall-block",
            Box::new(|c| json!({"justification": "j", "url": format!("https://n.io/{c}")})),
            "url",
        ),
        (
            "egress-proxy-block",
            Box::new(
                move |c| json!({"justification": "j", "routes": routes(&format!("a{c}.io"), "/x", "T")}),
            ),
            "routes[0].host",
        ),
        (
            "egress-proxy-block",
            Box::new(
                move |c| json!({"justification": "j", "routes": routes("a.io", &format!("/x{c}"), "T")}),
            ),
            "routes[0].path_allowlist[0]",
        ),
        (
            "egress-proxy-block",
            Box::new(
                move |c| json!({"justification": "j", "routes": routes("a.io", "/x", &format!("T{c}"))}),
            ),
            "routes[0].auth.token_env",
        ),
        (
            "capability-block",
            Box::new(
                |c| json!({"justification": "j", "dockerfile": format!("FROM x\nRUN a{c}\n")}),
            ),
            "dockerfile",
        ),
        (
            "git-rule-block",
            Box::new(|c| json!({"justification": "j", "repo": format!("app{c}"), "policy": {}})),
            "repo",
        ),
        (
            "git-rule-block",
            Box::new(|c| {
                json!({"justification": "j", "repo": "app",
                       "policy": {"protected": [format!("release{c}")]}})
            }),
            "policy.protected[0]",
        ),
    ];
    for (tool, arguments, field) in &cases {
        for (bad, escape) in [
            ("\u{1b}[2J", "\\u001b"),
            ("\r", "\\u000d"),
            ("\u{7f}", "\\u007f"),
            ("\u{9b}", "\\u009b"),
            ("\u{202e}", "\\u202e"),
            ("\u{2067}", "\\u2067"),
        ] {
            let result = tokio::time::timeout(
                Duration::from_secs(5),
                call(server.addr, tool, arguments(bad)),
            )
            .await
            .unwrap_or_else(|_| panic!("{tool} {field} {escape}: queued instead of refused"));
            assert_eq!(result["isError"], true, "{tool} {field} {escape}: {result}");
            let message = text(&result);
            assert!(
                message.contains(&format!("{field}: contains"))
                    && message.contains(escape)
                    && message.contains("nothing was queued"),
                "{tool} {field} {escape}: {message}"
            );
        }
        assert!(server.queue.pending().unwrap().is_empty(), "{tool} {field}");
        // Positive control: the same call, clean, reaches the operator.
        let (addr, clean) = (server.addr, arguments(""));
        let tool = tool.to_string();
        let waiting = tokio::spawn(async move { call(addr, &tool, clean).await });
        let proposal = pending_proposal(&server.queue).await;
        server
            .queue
            .decide(&decision(&proposal.id, Status::Rejected, "control"))
            .unwrap();
        let result = waiting.await.unwrap();
        assert_eq!(result["structuredContent"]["status"], "rejected", "{field}");
    }
    // Newline and tab are text in a multi-line field, not in a one-line field.
    let result = call(
        server.addr,
        "firewall-block",
        json!({"justification": "j", "url": "https://n.io/\tx"}),
    )
    .await;
    assert!(text(&result).contains("url: contains"), "{result}");
}

#[tokio::test]
async fn twenty_waiting_proposals_are_the_most() {
    let server = start().await;
    server.queue.publish_current(&current()).unwrap();
    for i in 0..Limits::PENDING {
        let proposal = Proposal {
            id: format!("{i}-waiting"),
            tool: Tool::FirewallBlock,
            justification: "earlier".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            change: Change::allow_host_from_url(&format!("https://h{i}.io/")).unwrap(),
        };
        server.queue.submit(&proposal).unwrap();
    }
    let arguments = json!({"justification": "one more", "url": "https://more.io/"});
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        call(server.addr, "firewall-block", arguments.clone()),
    )
    .await
    .expect("refused at once, not queued to wait");
    assert_eq!(result["isError"], true, "{result}");
    let message = text(&result);
    assert!(
        message.contains("nothing was queued")
            && message.contains("already has 20 proposals waiting")
            && message.contains("wait for the operator's decisions"),
        "{message}"
    );
    assert_eq!(server.queue.pending().unwrap().len(), Limits::PENDING);
    // Positive control: once one is decided, the same call is queued.
    server
        .queue
        .decide(&decision("0-waiting", Status::Rejected, "no"))
        .unwrap();
    let addr = server.addr;
    let waiting = tokio::spawn(async move { call(addr, "firewall-block", arguments).await });
    let queued = loop {
        let pending = server.queue.pending().unwrap();
        if let Some(p) = pending.iter().find(|p| p.justification == "one more") {
            break p.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    server
        .queue
        .decide(&decision(&queued.id, Status::Approved, ""))
        .unwrap();
    assert_eq!(
        waiting.await.unwrap()["structuredContent"]["status"],
        "approved"
    );
}

/// A caller that goes away (the connection closes while its call waits) withdraws its proposal.
#[tokio::test]
async fn a_cancelled_call_withdraws_its_proposal() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start().await;
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "capability-block",
        "arguments": {"justification": "needs gcc", "dockerfile": "FROM debian\n"}}})
    .to_string();
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: supervise:7411\r\nContent-Type: application/json\r\n\
         Accept: {ACCEPT}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).await.unwrap();
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"),
        "the call is waiting"
    );
    // Positive control: the proposal is there while the caller waits.
    let proposal = pending_proposal(&server.queue).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.queue.pending().unwrap(), vec![proposal.clone()]);
    drop(stream);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !server.queue.pending().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the proposal of a call whose caller left is still pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(
        server.queue.proposal(&proposal.id),
        Err(bottle_supervise_queue::QueueError::NoSuchProposal(_))
    ));
}
