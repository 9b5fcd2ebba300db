"""The single entry point for the embedded footing, and the one route table every gateway
(this proxy, NGINX in compose, the Helm ingress) is derived from or tested against."""
