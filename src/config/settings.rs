//! `Config`, the effective configuration, made from the one table of settings in
//! `cli::settings` (see there): its fields, their YAML form, their defaults, and the list of
//! keys with and without a flag.

use super::{
    BootstrapConfig, DEFAULT_ETCD_VERSION, DEFAULT_METRICS_TEXTFILE_DIR, DEFAULT_RELEASE_URL,
};
use crate::cli::settings::settings_table;
use crate::cli::values::{
    AbsPath, Arch, Calendar, ClusterToken, CompactionMode, CompactionRetention, DiskPriority,
    EtcdVersion, Host, ImageRepository, InitSystem, MemberName, Region, ReleaseUrl, S3Endpoint,
    S3Location, Sha256Hex,
};
use std::net::IpAddr;
use std::path::PathBuf;

/// `Config`, its `Default`, `FLAG_KEYS` and `FILE_KEYS` from the rows of the table.
macro_rules! config_struct {
    (
        $(
            $(#[doc = $gdoc:literal])*
            flags $Group:ident { $(flatten $sub:ident : $Sub:ident;)* } {
                $(
                    $(#[doc = $doc:literal])+
                    [$($arg:meta),*]
                    $field:ident : $ty:ty, flag $fty:ty = $default:expr;
                )*
            }
        )*
        file {
            $(
                $(#[doc = $fdoc:literal])+
                $ffield:ident : $ffty:ty = $fdefault:expr;
            )*
        }
    ) => {
        /// Every setting of a member. YAML keys are the kebab-case field names, which are
        /// also the long flag names, so `--data-dir X` and `data-dir: X` mean the same thing.
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
        pub struct Config {
            $($( $(#[doc = $doc])+ pub $field: $ty, )*)*
            $( $(#[doc = $fdoc])+ pub $ffield: $ffty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config {
                    $($( $field: $default, )*)*
                    $( $ffield: $fdefault, )*
                }
            }
        }

        /// Keys that have a flag of the same name.
        pub const FLAG_KEYS: &[&str] = &[$($(stringify!($field),)*)*];
        /// Keys set only in files (or metadata).
        pub const FILE_KEYS: &[&str] = &[$(stringify!($ffield),)*];
    };
}

settings_table!(config_struct);
