"""The AWS Lambda way in: ``entry`` routes every event by its shape (``handler.lambda_handler``); one adapter
per trigger beside it (SQS, the EventBridge schedule) and the maintenance job that redrives SQS dead letters."""
