from chassis.serve import serve
from contracts.access import APPLICATION
from ingestion.config import Settings
from ingestion.main import SERVICE, create_app

settings = Settings()
serve(create_app(settings), settings, SERVICE, namespace=APPLICATION)
