use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Behave like other command-line tools when output is piped into `head` or `grep -q`:
    // end quietly on a closed stdout instead of printing the panic of println! (or of a
    // generator writing to stdout). SIGPIPE itself
    // stays ignored (Rust's default): with its default action a write to a socket the peer
    // closed (writev on a TLS connection, which has no MSG_NOSIGNAL) would kill the process
    // in the middle of a join or a bootstrap.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") || msg.contains("BrokenPipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
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
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
