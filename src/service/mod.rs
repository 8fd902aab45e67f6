//! The systemd side: rendering the unit and environment files, and driving systemctl.

mod render;
mod systemctl;
pub mod user;

pub use render::{
    etcd_flags, render_backup_service, render_backup_timer, render_defrag_service,
    render_defrag_timer, render_env, render_etcdctl_env, render_etcdctl_wrapper,
    render_pod_manifest, render_renew_service, render_renew_timer, render_unit, tls_floor_flags,
    ClusterBootstrap, CIPHER_SUITES,
};
pub use systemctl::{Systemctl, SystemctlError};
