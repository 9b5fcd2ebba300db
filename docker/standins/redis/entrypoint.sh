#!/bin/sh
# As upstream: flags or a config file alone mean "redis-server with these".
set -e
case "$1" in
    -*|*.conf) set -- redis-server "$@" ;;
esac
exec "$@"
