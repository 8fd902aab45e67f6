#!/bin/sh
# Written by etcdadm: etcdctl for the local member.
set -a
. /etc/etcd/etcdctl.env
set +a
exec /opt/bin/etcdctl "$@"
