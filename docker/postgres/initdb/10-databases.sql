-- Each service owns its database (run once, on an empty data volume).
CREATE DATABASE package OWNER drone;
CREATE DATABASE dronescheduler OWNER drone;
