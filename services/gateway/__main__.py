from chassis.serve import serve
from contracts.access import APPLICATION
from gateway.config import Settings
from gateway.proxy import create_gateway

settings = Settings()
# The entry point: its clients may be behind a proxy of their own.
serve(
    create_gateway(settings),  # type: ignore[arg-type]
    settings,
    "gateway",
    namespace=APPLICATION,
    reads_forwarded_headers=True,
)
