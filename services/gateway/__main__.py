from chassis.serve import serve
from gateway.config import Settings
from gateway.proxy import create_gateway

settings = Settings()
serve(create_gateway(settings), settings, "gateway")  # type: ignore[arg-type]
