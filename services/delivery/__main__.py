from chassis.serve import serve
from contracts.access import APPLICATION
from delivery.config import Settings
from delivery.main import SERVICE, create_app

settings = Settings()
serve(create_app(settings), settings, SERVICE, namespace=APPLICATION)
