from chassis.serve import serve
from contracts.access import APPLICATION
from package.config import Settings
from package.main import SERVICE, create_app

settings = Settings()
serve(create_app(settings), settings, SERVICE, namespace=APPLICATION)
