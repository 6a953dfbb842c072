//! `arq serve`: the warehouse and every arq function over the PostgreSQL wire protocol.
//!
//! datafusion-postgres (on pgwire) speaks the protocol, plans the statements and answers
//! `pg_catalog`; arq adds what a server left running needs ([`handler`]): SCRAM-SHA-256
//! logins ([`users`]), TLS, the read-only allow-list ([`policy`]), a memory limit per
//! statement and `statement_timeout`, cancel requests, a maximum number of connections,
//! new snapshots without a restart ([`session`]), a clean shutdown on SIGTERM and one
//! JSON log line per connection and statement ([`log`]).

pub mod cooperative;
pub mod handler;
pub mod log;
pub mod policy;
pub mod session;
pub mod users;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arq_models::sql::SessionModel;
use pgwire::api::ConnectionManager;
use pgwire::tokio::TlsAcceptor;
use pgwire::tokio::process_socket;
use pgwire::tokio::tokio_rustls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::error::{ArqError, Result};
use crate::warehouse::{AsOf, Warehouse};
use handler::{Connection, Limits, Shared};
use session::Catalog;
use users::Users;

/// How long running statements get to end after SIGTERM before connections are closed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The server's settings, checked by [`serve`] before it listens.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub users_file: Option<PathBuf>,
    pub trust_local: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub require_tls: bool,
    pub limits: Limits,
    pub max_connections: usize,
    pub reload_interval: Duration,
}

/// Serves `warehouse` until SIGTERM or SIGINT.
///
/// This future runs the control loop (listening, signals, reloads); the connections and
/// their statements run on `queries`, another runtime, so that CPU-bound statements
/// never delay an accept or a signal. After the shutdown grace the caller shuts
/// `queries` down without waiting for a statement stuck in a long computation.
pub async fn serve(
    options: &ServeOptions,
    warehouse: Warehouse,
    as_of: AsOf,
    model: Option<SessionModel>,
    queries: &tokio::runtime::Handle,
) -> Result<()> {
    let users = authentication(options)?;
    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => Some(load_tls(cert, key)?),
        (None, None) => None,
        _ => {
            return Err(ArqError::Usage("give both --tls-cert and --tls-key".into()));
        }
    };
    if options.require_tls && tls.is_none() {
        return Err(ArqError::Usage(
            "--require-tls needs --tls-cert and --tls-key".into(),
        ));
    }
    if options.max_connections == 0 {
        return Err(ArqError::Usage(
            "--max-connections must be at least 1".into(),
        ));
    }
    let snapshot = warehouse.as_of();
    let catalog = Arc::new(Catalog::new(warehouse, as_of, model).await?);
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| ArqError::Input(format!("cannot listen on {}: {e}", options.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| ArqError::Input(format!("cannot listen on {}: {e}", options.listen)))?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        catalog: Arc::clone(&catalog),
        users: users.clone().map(Arc::new),
        require_tls: options.require_tls,
        tls_cert_pem: tls.as_ref().map(|(_, pem)| pem.clone()),
        limits: options.limits,
        connections: Arc::new(ConnectionManager::new()),
        cancels: Default::default(),
        shutdown: shutdown_rx,
    });
    let signal_error = |e: std::io::Error| ArqError::Internal(format!("signal handler: {e}"));
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let hangup = signal(SignalKind::hangup()).map_err(signal_error)?;
    // Reloads run beside the accept loop: opening a large warehouse takes seconds.
    let reloads = tokio::spawn(reload_loop(
        Arc::clone(&catalog),
        options.reload_interval,
        hangup,
    ));
    let tls = tls.map(|(acceptor, _)| acceptor);

    log::event("listening")
        .with("addr", local.to_string())
        .with("tls", tls.is_some())
        .with("require_tls", options.require_tls)
        .with("users", users.as_ref().map_or(0, Users::len))
        .with("trust_local", users.is_none())
        .with("snapshot", snapshot.to_string())
        .with("max_connections", options.max_connections)
        .write();

    let slots = Arc::new(Semaphore::new(options.max_connections));
    let mut tasks = JoinSet::new();
    let mut next_id: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, addr) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        log::event("accept_failed").with("error", e.to_string()).write();
                        // Out of file descriptors and the like: do not spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                next_id += 1;
                match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        let connection = Connection::new(next_id, Arc::clone(&shared));
                        let tls = tls.clone();
                        tasks.spawn_on(async move {
                            let _slot = slot;
                            if let Err(e) = process_socket(socket, tls, connection).await {
                                log::event("connection_error")
                                    .with("conn", next_id)
                                    .with("addr", addr.to_string())
                                    .with("error", e.to_string())
                                    .write();
                            }
                        }, queries);
                    }
                    Err(_) => {
                        log::event("refused")
                            .with("conn", next_id)
                            .with("addr", addr.to_string())
                            .with("reason", "too many connections")
                            .write();
                        tasks.spawn(refuse_too_many(socket));
                    }
                }
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }

    log::event("shutdown")
        .with("connections", tasks.len())
        .write();
    drop(listener);
    reloads.abort();
    let _ = shutdown_tx.send(true);
    let grace = tokio::time::sleep(SHUTDOWN_GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            () = &mut grace => {
                // Connections still open are closed; a statement stuck in a long
                // computation ends with the runtime it runs on.
                log::event("closing").with("connections", tasks.len()).write();
                tasks.abort_all();
                break;
            }
        }
    }
    log::event("stopped").write();
    Ok(())
}

/// The users to check, or None with `--trust-local` (loopback only).
fn authentication(options: &ServeOptions) -> Result<Option<Users>> {
    let users = Users::load(options.users_file.as_deref())?;
    match (users.is_empty(), options.trust_local) {
        (false, false) => Ok(Some(users)),
        (false, true) => Err(ArqError::Usage(
            "--trust-local is for a server without users; users are configured \
             (--users or ARQ_SERVE_USER): drop --trust-local"
                .into(),
        )),
        (true, true) if options.listen.ip().is_loopback() => Ok(None),
        (true, true) => Err(ArqError::Usage(format!(
            "--trust-local accepts anyone without a password, so only on a loopback address \
             (127.0.0.1, ::1); {} is reachable from other machines: configure users",
            options.listen
        ))),
        (true, false) => Err(ArqError::Usage(format!(
            "no users: add one with `arq serve --users users.toml --add-user NAME` and start \
             with --users users.toml, or set {} and {}; --trust-local serves without \
             passwords on a loopback address",
            users::USER_VAR,
            users::PASSWORD_VAR
        ))),
    }
}

/// The TLS acceptor of `--tls-cert` / `--tls-key`, and the certificate's PEM (for SCRAM's
/// channel binding): any failure stops the server (it never falls back to plain text).
fn load_tls(cert: &Path, key: &Path) -> Result<(TlsAcceptor, Vec<u8>)> {
    let bad =
        |path: &Path, what: String| ArqError::Input(format!("TLS: {}: {what}", path.display()));
    let pem = std::fs::read(cert).map_err(|e| bad(cert, e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(cert, "no certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            bad(
                cert,
                format!("the certificate and key do not go together: {e}"),
            )
        })?;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), pem))
}

/// Every `interval`, and at once on SIGHUP, serves a changed warehouse (see
/// [`Catalog::reload`]).
async fn reload_loop(
    catalog: Arc<Catalog>,
    interval: Duration,
    mut hangup: tokio::signal::unix::Signal,
) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        let force = tokio::select! {
            _ = hangup.recv() => true,
            _ = tick.tick() => false,
        };
        log_reload(catalog.reload(force).await);
    }
}

fn log_reload(result: Option<Result<chrono::NaiveDate>>) {
    match result {
        None => {}
        Some(Ok(snapshot)) => log::event("reload")
            .with("snapshot", snapshot.to_string())
            .write(),
        Some(Err(e)) => log::event("reload")
            .with("error", format!("{e} (still serving the previous state)"))
            .write(),
    }
}

/// Answers a connection over `--max-connections` as Postgres does: its startup (after
/// declining SSL) gets FATAL 53300 "sorry, too many clients already".
async fn refuse_too_many(mut socket: TcpStream) {
    let answer = async {
        loop {
            let mut len = [0u8; 4];
            socket.read_exact(&mut len).await?;
            let len = u32::from_be_bytes(len) as usize;
            if !(8..=10_000).contains(&len) {
                return Ok(());
            }
            let mut body = vec![0u8; len - 4];
            socket.read_exact(&mut body).await?;
            let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
            // SSLRequest, GSSENCRequest: no.
            if code == 80_877_103 || code == 80_877_104 {
                socket.write_all(b"N").await?;
                continue;
            }
            break;
        }
        let mut fields = Vec::new();
        for (tag, value) in [
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', "53300"),
            (b'M', "sorry, too many clients already"),
        ] {
            fields.push(tag);
            fields.extend_from_slice(value.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut message = vec![b'E'];
        message.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
        message.extend_from_slice(&fields);
        socket.write_all(&message).await?;
        socket.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), answer).await;
}
