use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = etcdadm::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .compact()
        .init();
    // One crypto provider for every TLS user (etcd client, downloads).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
    match runtime.block_on(etcdadm::commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // Behave like other command-line tools when output is piped into `head` or `grep -q`:
        // end quietly, with the status of a process killed by SIGPIPE. SIGPIPE itself stays
        // ignored (Rust's default) and every write to stdout goes through etcdadm::stdout,
        // which returns EPIPE as an error: with SIGPIPE's default action a write to a socket
        // the peer closed (writev on a TLS connection, which has no MSG_NOSIGNAL) would kill
        // the process in the middle of a join or a bootstrap.
        Err(e) if etcdadm::stdout::is_closed(e.as_ref()) => ExitCode::from(141),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
