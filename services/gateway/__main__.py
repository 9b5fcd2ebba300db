from chassis.serve import serve
from contracts.access import APPLICATION
from gateway.config import Settings
from gateway.proxy import create_gateway

settings = Settings()
serve(create_gateway(settings), settings, "gateway", namespace=APPLICATION)  # type: ignore[arg-type]
