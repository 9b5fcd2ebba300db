from chassis.serve import serve
from contracts.access import APPLICATION
from dronescheduler.config import Settings
from dronescheduler.main import SERVICE, create_app

settings = Settings()
serve(create_app(settings), settings, SERVICE, namespace=APPLICATION)
