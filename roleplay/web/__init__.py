"""The browser app (`roleplay serve`): pages for trainees, trainers and admins over the same history
database as the command line. server.py holds the route table, auth.py who may do what."""
