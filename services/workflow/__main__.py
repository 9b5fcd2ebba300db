from chassis.serve import serve
from contracts.access import APPLICATION
from workflow.config import Settings
from workflow.main import SERVICE, create_app

settings = Settings()
serve(create_app(settings), settings, SERVICE, namespace=APPLICATION)
