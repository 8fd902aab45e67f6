//! Helpers shared by the metadata mock tests.

use mockito::{Matcher, Mock, ServerGuard};

/// reqwest is built without a default crypto provider; main installs ring.
pub(super) fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(super) async fn server() -> ServerGuard {
    crypto();
    mockito::Server::new_async().await
}

/// A mock that keeps answering however often it is hit, and wins over any mock created
/// after it (mockito prefers the first matching mock that still expects hits).
pub(super) fn always(mock: Mock) -> Mock {
    mock.expect_at_most(usize::MAX)
}

/// What a metadata service answers for a key it does not have: 404 for any GET. Create it
/// last.
pub(super) async fn not_found_otherwise(server: &mut ServerGuard) -> Mock {
    always(server.mock("GET", Matcher::Any).with_status(404).with_body("Not Found"))
        .create_async()
        .await
}

/// A URL on which nothing listens.
pub(super) fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A URL whose server accepts connections and never answers. Keep the listener alive.
pub(super) fn silent_url() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}
