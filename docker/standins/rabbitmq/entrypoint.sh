#!/bin/sh
# The official image's environment, written as configuration: it takes effect when the
# node first initialises its database, as upstream.
set -e
conf=/etc/rabbitmq/conf.d/10-docker-defaults.conf
{
    # Other containers connect over the network; upstream lifts guest's loopback limit too.
    echo "loopback_users = none"
    [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && echo "default_user = $RABBITMQ_DEFAULT_USER"
    [ -n "${RABBITMQ_DEFAULT_PASS:-}" ] && echo "default_pass = $RABBITMQ_DEFAULT_PASS"
    [ -n "${RABBITMQ_DEFAULT_VHOST:-}" ] && echo "default_vhost = $RABBITMQ_DEFAULT_VHOST"
    true
} >"$conf"
exec "$@"
