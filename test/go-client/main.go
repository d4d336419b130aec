// Command go-client drives a running Fanout through a client that oapi-codegen generated from
// openapi.yaml into package fanout: it creates a batch of the rev task, gets it until it is
// final, lists batches by its label, and asks for a batch that does not exist. It prints one
// JSON object saying what it saw, for go-client.test.ts to check. Every call goes through the
// generated methods and models; nothing here knows a URL path.
//
// Environment: FANOUT_URL (the service) and FANOUT_API_KEY; FANOUT_RUN_LABEL tells this run's
// batch apart from others of the same tenant.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"fanout.dev/go-client/fanout"
)

type batchSeen struct {
	Status   int                     `json:"status"`
	Id       string                  `json:"id"`
	Location string                  `json:"location"`
	Name     string                  `json:"name"`
	Labels   fanout.Labels           `json:"labels"`
	Phase    fanout.BatchStatusPhase `json:"phase"`
}

type report struct {
	Create  batchSeen `json:"create"`
	AgainId string    `json:"createAgainId"`
	Gets    int       `json:"gets"`
	Final   struct {
		Phase            fanout.BatchStatusPhase `json:"phase"`
		Counts           fanout.ItemCounts       `json:"counts"`
		CompletedIndexes string                  `json:"completedIndexes"`
	} `json:"final"`
	List struct {
		Status int      `json:"status"`
		Ids    []string `json:"ids"`
	} `json:"list"`
	NotFound struct {
		Status  int            `json:"status"`
		Problem fanout.Problem `json:"problem"`
	} `json:"notFound"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "go-client:", err)
		os.Exit(1)
	}
}

func run() error {
	url, key, label := os.Getenv("FANOUT_URL"), os.Getenv("FANOUT_API_KEY"), os.Getenv("FANOUT_RUN_LABEL")
	if url == "" || key == "" || label == "" {
		return fmt.Errorf("set FANOUT_URL, FANOUT_API_KEY and FANOUT_RUN_LABEL")
	}
	bearer := func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+key)
		return nil
	}
	client, err := fanout.NewClientWithResponses(url, fanout.WithRequestEditorFn(bearer))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var r report

	name, task, parallelism := "from-go", "rev", 2
	spec := fanout.CreateBatchJSONRequestBody{
		Name:        &name,
		Labels:      &fanout.Labels{"lang": "go", "run": label},
		Task:        &task,
		Items:       []interface{}{"foo", "bar", "baz"},
		Parallelism: &parallelism,
	}
	idempotencyKey := "go-client-" + label
	created, err := client.CreateBatchWithResponse(ctx, &fanout.CreateBatchParams{IdempotencyKey: &idempotencyKey}, spec)
	if err != nil {
		return fmt.Errorf("createBatch: %w", err)
	}
	if created.JSON202 == nil {
		return fmt.Errorf("createBatch: %d %s", created.StatusCode(), created.Body)
	}
	b := created.JSON202
	r.Create = batchSeen{created.StatusCode(), b.Id, created.HTTPResponse.Header.Get("Location"), deref(b.Name), b.Labels, b.Status.Phase}
	again, err := client.CreateBatchWithResponse(ctx, &fanout.CreateBatchParams{IdempotencyKey: &idempotencyKey}, spec)
	if err != nil || again.JSON202 == nil {
		return fmt.Errorf("createBatch again: %v %s", err, bodyOf(again))
	}
	r.AgainId = again.JSON202.Id

	for {
		got, err := client.GetBatchWithResponse(ctx, b.Id)
		if err != nil {
			return fmt.Errorf("getBatch: %w", err)
		}
		if got.JSON200 == nil {
			return fmt.Errorf("getBatch: %d %s", got.StatusCode(), got.Body)
		}
		r.Gets++
		s := got.JSON200.Status
		r.Final.Phase, r.Final.Counts, r.Final.CompletedIndexes = s.Phase, s.Counts, s.CompletedIndexes
		if final(s.Phase) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("batch %s still %s: %w", b.Id, s.Phase, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}

	selector := "lang=go,run=" + label
	listed, err := client.ListBatchesWithResponse(ctx, &fanout.ListBatchesParams{LabelSelector: &selector})
	if err != nil {
		return fmt.Errorf("listBatches: %w", err)
	}
	if listed.JSON200 == nil {
		return fmt.Errorf("listBatches: %d %s", listed.StatusCode(), listed.Body)
	}
	r.List.Status = listed.StatusCode()
	r.List.Ids = []string{}
	for _, item := range listed.JSON200.Items {
		r.List.Ids = append(r.List.Ids, item.Id)
	}

	missing, err := client.GetBatchWithResponse(ctx, "b-does-not-exist")
	if err != nil {
		return fmt.Errorf("getBatch (missing): %w", err)
	}
	if missing.ApplicationproblemJSON404 == nil {
		return fmt.Errorf("getBatch (missing): %d %s", missing.StatusCode(), missing.Body)
	}
	r.NotFound.Status, r.NotFound.Problem = missing.StatusCode(), *missing.ApplicationproblemJSON404

	return json.NewEncoder(os.Stdout).Encode(r)
}

func final(p fanout.BatchStatusPhase) bool {
	return p == fanout.BatchStatusPhaseSucceeded || p == fanout.BatchStatusPhaseFailed || p == fanout.BatchStatusPhaseCancelled
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func bodyOf(r *fanout.CreateBatchResponse) string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf("%d %s", r.StatusCode(), r.Body)
}
